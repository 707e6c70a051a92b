package validation_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/capstanmesh/capstan/api/annotations"
	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/api/validation"
)

func TestDependencies(t *testing.T) {
	for _, tc := range []struct {
		value string
		// bad are the entries refused, in order.
		bad []string
	}{
		{value: ""},
		{value: " payments.billing , ledger/*,, *"},
		{value: "payments.billing.svc, payments.billing.svc.cluster.local"},
		{value: "reviews", bad: []string{`"reviews"`}},
		{value: "Reviews.books, a.b.c.d, /*, ok.ns", bad: []string{`"Reviews.books"`, `"a.b.c.d"`, `"/*"`}},
	} {
		t.Run(tc.value, func(t *testing.T) {
			errs := validation.Dependencies(map[string]string{meshv1alpha1.AnnotationDependencies: tc.value})
			if len(errs) != len(tc.bad) {
				t.Fatalf("%d problems, want %d: %v", len(errs), len(tc.bad), errs)
			}
			for i, e := range errs {
				if e.Field != "metadata.annotations[capstan.dev/dependencies]" || !strings.Contains(e.Detail, tc.bad[i]) {
					t.Errorf("problem %d: %s: %s, want the annotation's path and entry %s", i, e.Field, e.Detail, tc.bad[i])
				}
			}
		})
	}
	if errs := validation.Dependencies(nil); errs != nil {
		t.Errorf("no annotation: %v", errs)
	}
}

func TestParseDependencies(t *testing.T) {
	d, errs := annotations.ParseDependencies("b.y, a.x.svc.cluster.local, y/*, x/*, b.y.svc, *")
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	if !d.All || !slices.Equal(d.Namespaces, []string{"x", "y"}) || !slices.Equal(d.Hosts, []string{"a.x", "b.y"}) {
		t.Errorf("parsed %+v", d)
	}
	m := annotations.Dependencies{Hosts: []string{"c.z"}}.Merge(annotations.Dependencies{Hosts: []string{"a.x", "c.z"}, Namespaces: []string{"q"}})
	if m.All || !slices.Equal(m.Hosts, []string{"a.x", "c.z"}) || !slices.Equal(m.Namespaces, []string{"q"}) {
		t.Errorf("merged %+v", m)
	}
}
