package integration

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/controllers"
)

// TestRegexAboveEnvoysLimitIsNotAccepted stores (webhooks off) a MeshRoute
// whose header regex Envoy would refuse: the status controller gives it
// Accepted=False naming the field, the program size and the limit.
func TestRegexAboveEnvoysLimitIsNotAccepted(t *testing.T) {
	t.Parallel()
	ns := env.NewNamespace(t)
	env.StartManager(t, controllers.SetupWithManager, ns)

	mr := canaryRoute(ns, "regex")
	mr.Spec.HTTP[0].Match = []meshv1alpha1.HTTPMatch{{Headers: []meshv1alpha1.HeaderMatch{{
		Name: "x-item", Type: meshv1alpha1.MatchRegularExpression, Value: "/items/[a-z0-9]{0,100}"}}}}
	if err := env.Client.Create(context.Background(), mr); err != nil {
		t.Fatal(err)
	}
	got := waitRouteAccepted(t, ns, "regex", metav1.ConditionFalse)
	acc, _ := condition(got.Status.Conditions, meshv1alpha1.ConditionAccepted)
	want := "spec.http[0].match[0].headers[0].value: RE2 program size 311 exceeds the limit of 100"
	if acc.Reason != meshv1alpha1.ReasonInvalid || !strings.HasPrefix(acc.Message, want) {
		t.Errorf("Accepted %s/%q, want Invalid/%q...", acc.Reason, acc.Message, want)
	}
}
