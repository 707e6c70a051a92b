package validation_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/api/validation"
	"github.com/capstanmesh/capstan/api/validation/validationtest"
)

// problems applies the package's rules for obj's kind.
func problems(obj runtime.Object) field.ErrorList {
	switch o := obj.(type) {
	case *meshv1alpha1.MeshRoute:
		return validation.MeshRoute(o)
	case *meshv1alpha1.DestinationPolicy:
		return validation.DestinationPolicy(o)
	case *meshv1alpha1.PeerAuthentication:
		return validation.PeerAuthentication(o)
	case *meshv1alpha1.Mesh:
		return append(validation.MeshName(o), validation.Mesh(o)...)
	}
	panic("unknown kind")
}

// TestCases checks the shared table (validationtest) against the rules
// themselves: each case's problems name exactly its fields, in order. The
// callers' tests check that they reach the same verdicts.
func TestCases(t *testing.T) {
	for _, c := range validationtest.Cases() {
		t.Run(c.Kind()+"/"+c.Name, func(t *testing.T) {
			before := c.Object.DeepCopyObject()
			var got []string
			for _, e := range problems(c.Object) {
				got = append(got, e.Field)
			}
			if diff := cmp.Diff(c.Fields, got); diff != "" {
				t.Errorf("fields named (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, c.Object); diff != "" {
				t.Errorf("validation modified its input (-before +after):\n%s", diff)
			}
		})
	}
}

// TestWholePoolEjectionThresholdIs100WithoutPanic pins the one definition of
// "can eject the whole pool". Two callers disagreed: the status controller
// refused maxEjectionPercent 100 with minHealthPercent 0, the webhook refused
// maxEjectionPercent above 50 with minHealthPercent 0 and consecutive5xxErrors
// below 3. The controller's value won: below 100 Envoy keeps some endpoints of
// a pool in service, and a panic threshold sends traffic to every endpoint
// anyway, so only 100 with minHealthPercent 0 ejects the whole pool; the
// number of errors does not change how many endpoints can be ejected. That is
// what a user coming from Istio expects: Istio admits every
// maxEjectionPercent and consecutive5xxErrors (its circuit-breaking example
// uses 1 error and 100%), and Linkerd's failure accrual has no percentage.
func TestWholePoolEjectionThresholdIs100WithoutPanic(t *testing.T) {
	if validation.WholePoolEjectionPercent != 100 {
		t.Fatalf("WholePoolEjectionPercent = %d, want 100", validation.WholePoolEjectionPercent)
	}
	p := func(n int32) *int32 { return &n }
	for _, tc := range []struct {
		name string
		od   *meshv1alpha1.OutlierDetection
		want bool
	}{
		{"none", nil, false},
		{"defaults (50, 50)", &meshv1alpha1.OutlierDetection{}, false},
		{"100 with minHealthPercent 0", &meshv1alpha1.OutlierDetection{MaxEjectionPercent: p(100), MinHealthPercent: p(0)}, true},
		{"100 with minHealthPercent 0 and 1 error", &meshv1alpha1.OutlierDetection{Consecutive5xxErrors: p(1), MaxEjectionPercent: p(100), MinHealthPercent: p(0)}, true},
		{"99 with minHealthPercent 0 (the webhook refused above 50)", &meshv1alpha1.OutlierDetection{MaxEjectionPercent: p(99), MinHealthPercent: p(0)}, false},
		{"51 with minHealthPercent 0 (the webhook refused it)", &meshv1alpha1.OutlierDetection{MaxEjectionPercent: p(51), MinHealthPercent: p(0)}, false},
		{"100 with a panic threshold of 1", &meshv1alpha1.OutlierDetection{MaxEjectionPercent: p(100), MinHealthPercent: p(1)}, false},
		{"100 with minHealthPercent unset (default 50)", &meshv1alpha1.OutlierDetection{MaxEjectionPercent: p(100)}, false},
		{"consecutive5xxErrors 1 (the webhook refused below 3)", &meshv1alpha1.OutlierDetection{Consecutive5xxErrors: p(1)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := validation.CanEjectWholePool(tc.od); got != tc.want {
				t.Errorf("CanEjectWholePool = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestAnnotationAdmitsWholePoolEjection: the annotation lifts the whole-pool
// rule (and only it); WholePoolEjections still lists the setting.
func TestAnnotationAdmitsWholePoolEjection(t *testing.T) {
	p := func(n int32) *int32 { return &n }
	dp := &meshv1alpha1.DestinationPolicy{Spec: meshv1alpha1.DestinationPolicySpec{Host: "reviews",
		TrafficPolicy: &meshv1alpha1.TrafficPolicy{OutlierDetection: &meshv1alpha1.OutlierDetection{MaxEjectionPercent: p(100), MinHealthPercent: p(0)}},
		Subsets:       []meshv1alpha1.Subset{{Name: "v1", Labels: map[string]string{"-bad": "v1"}}},
	}}
	if got := len(validation.DestinationPolicy(dp)); got != 2 {
		t.Errorf("without the annotation: %d problems, want 2", got)
	}
	dp.Annotations = map[string]string{meshv1alpha1.AnnotationAllowAggressiveEjection: "true"}
	errs := validation.DestinationPolicy(dp)
	if len(errs) != 1 || errs[0].Field != "spec.subsets[0].labels[-bad]" {
		t.Errorf("with the annotation: %v, want only the label problem", errs)
	}
	if got := validation.WholePoolEjections(dp); len(got) != 1 || got[0].Field != "spec.trafficPolicy.outlierDetection.maxEjectionPercent" {
		t.Errorf("WholePoolEjections = %v", got)
	}
}
