package translate

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/api/validation/validationtest"
	"github.com/capstanmesh/capstan/xds/ir"
)

// TestTranslationAgreesWithTheRules translates every shared case
// (validationtest) of the kinds the translator reads with the Services its
// objects name: a case the rules refuse is not Accepted and the message names
// each field, in order, and the offending part is left out of the model; the
// others are Accepted. (The Mesh's rules concern injection, not the model.)
// Admission's and the status reconcilers' tests check the same cases.
func TestTranslationAgreesWithTheRules(t *testing.T) {
	for _, c := range validationtest.Cases() {
		if c.Kind() == "Mesh" {
			continue
		}
		t.Run(c.Kind()+"/"+c.Name, func(t *testing.T) {
			in := &Inputs{Services: []corev1.Service{httpService(validationtest.Host), httpService("ratings")}}
			obj := c.Object.DeepCopyObject().(metav1.Object)
			switch o := obj.(type) {
			case *meshv1alpha1.MeshRoute:
				in.MeshRoutes = append(in.MeshRoutes, *o)
			case *meshv1alpha1.DestinationPolicy:
				in.DestinationPolicies = append(in.DestinationPolicies, *o)
			case *meshv1alpha1.PeerAuthentication:
				in.PeerAuthentications = append(in.PeerAuthentications, *o)
			}
			res, err := Translate(in)
			if err != nil {
				t.Fatal(err)
			}
			st := res.Status(ir.ObjectRef{Kind: c.Kind(), Namespace: obj.GetNamespace(), Name: obj.GetName()})
			if st == nil {
				t.Fatal("no status")
			}
			acc := meta.FindStatusCondition(st.Conditions, meshv1alpha1.ConditionAccepted)
			if msg := c.CheckAccepted(acc); msg != "" {
				t.Fatal(msg)
			}
			checkLeftOut(t, c, res.Mesh)
		})
	}
}

// checkLeftOut checks that a refused MeshRoute programs no rule and a
// refused DestinationPolicy no outlier detection or load balancer that
// admission would refuse.
func checkLeftOut(t *testing.T, c validationtest.Case, mesh *ir.Mesh) {
	t.Helper()
	var svc *ir.Service
	for _, s := range mesh.Services {
		if s.Name == validationtest.Host && s.Namespace == validationtest.Namespace {
			svc = s
		}
	}
	if svc == nil {
		t.Fatal("the Service is not in the model")
	}
	switch o := c.Object.(type) {
	case *meshv1alpha1.MeshRoute:
		if c.Refused() && len(svc.Routes) >= len(o.Spec.HTTP) {
			t.Errorf("%d rules programmed of %d; want the refused ones left out", len(svc.Routes), len(o.Spec.HTTP))
		}
		if !c.Refused() && len(svc.Routes) != len(o.Spec.HTTP) {
			t.Errorf("%d rules programmed of %d", len(svc.Routes), len(o.Spec.HTTP))
		}
	case *meshv1alpha1.DestinationPolicy:
		if c.Refused() && strings.Contains(c.Fields[0], "outlierDetection") {
			for _, p := range policies(svc) {
				if p.OutlierDetection != nil && p.OutlierDetection.MaxEjectionPercent >= 100 && p.OutlierDetection.MinHealthPercent == 0 {
					t.Errorf("whole-pool outlier detection programmed: %+v", p.OutlierDetection)
				}
			}
		}
	}
}

func policies(svc *ir.Service) []*ir.TrafficPolicy {
	out := []*ir.TrafficPolicy{svc.Policy}
	for _, s := range svc.Subsets {
		out = append(out, s.Policy)
	}
	var set []*ir.TrafficPolicy
	for _, p := range out {
		if p != nil {
			set = append(set, p)
		}
	}
	return set
}

func httpService(name string) corev1.Service {
	return corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: validationtest.Namespace},
		Spec:       corev1.ServiceSpec{ClusterIP: "10.96.0.10", Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}
}
