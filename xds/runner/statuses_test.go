package runner

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/xds/generate"
	"github.com/capstanmesh/capstan/xds/ir"
	"github.com/capstanmesh/capstan/xds/translate"
)

// A warning (a part left out for proxyless gRPC clients) keeps the object
// Programmed and is named in the message; an error makes it not Programmed.
func TestWarningsKeepProgrammed(t *testing.T) {
	warned := ir.ObjectRef{Kind: "DestinationPolicy", Namespace: "ns", Name: "warned"}
	broken := ir.ObjectRef{Kind: "MeshRoute", Namespace: "ns", Name: "broken"}
	in := []translate.ObjectStatus{{Ref: warned, Generation: 2}, {Ref: broken, Generation: 3}}
	errs := generate.Errors{
		{Source: &warned, Err: errors.New("outlierDetection.consecutive5xxErrors is not supported by proxyless gRPC clients"), Warning: true},
		{Source: &broken, Err: errors.New("destination cluster not found")},
	}

	out := withProgrammed(in, errs)

	w := meta.FindStatusCondition(out[0].Conditions, meshv1alpha1.ConditionProgrammed)
	if w == nil || w.Status != metav1.ConditionTrue || !strings.Contains(w.Message, "consecutive5xxErrors is not supported by proxyless gRPC clients") {
		t.Errorf("warned object: Programmed = %+v, want True naming the warning", w)
	}
	b := meta.FindStatusCondition(out[1].Conditions, meshv1alpha1.ConditionProgrammed)
	if b == nil || b.Status != metav1.ConditionFalse || b.ObservedGeneration != 3 {
		t.Errorf("broken object: Programmed = %+v, want False at generation 3", b)
	}
}
