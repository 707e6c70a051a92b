package translate

import (
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/capstanmesh/capstan/xds/ir"
)

func TestTranslateNilInputs(t *testing.T) {
	if _, err := Translate(nil); err == nil {
		t.Fatal("Translate(nil): want an error")
	}
}

func TestTranslateEmptyInputs(t *testing.T) {
	res, err := Translate(&Inputs{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Mesh.TrustDomain != "cluster.local" || res.Mesh.MTLSMode != "PERMISSIVE" {
		t.Errorf("defaults: got trust domain %q, mode %q", res.Mesh.TrustDomain, res.Mesh.MTLSMode)
	}
}

// TestTranslateDoesNotMutateInputs translates every golden input and checks
// that it equals a deep copy taken before.
func TestTranslateDoesNotMutateInputs(t *testing.T) {
	for _, path := range goldenInputs(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			in := readInputs(t, path)
			before := in.DeepCopy()
			if _, err := Translate(in); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(before, in); diff != "" {
				t.Errorf("Translate mutated its input (-before +after):\n%s", diff)
			}
		})
	}
}

// TestTranslateConcurrent shares one input between goroutines; with -race it
// catches any write to the input.
func TestTranslateConcurrent(t *testing.T) {
	for _, path := range goldenInputs(t) {
		in := readInputs(t, path)
		want := marshalResult(t, translateFile(t, path))
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				res, err := Translate(in)
				if err != nil {
					t.Error(err)
					return
				}
				got, err := yaml.Marshal(res)
				if err != nil || string(got) != string(want) {
					t.Errorf("%s: concurrent Translate differs (%v)", path, err)
				}
			})
		}
		wg.Wait()
	}
}

// TestTranslateOrderIndependent reverses every input list: the output is the same.
func TestTranslateOrderIndependent(t *testing.T) {
	for _, path := range goldenInputs(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			in := readInputs(t, path)
			want := marshalResult(t, translateFile(t, path))
			slices.Reverse(in.MeshRoutes)
			slices.Reverse(in.DestinationPolicies)
			slices.Reverse(in.PeerAuthentications)
			slices.Reverse(in.Services)
			slices.Reverse(in.EndpointSlices)
			slices.Reverse(in.Pods)
			res, err := Translate(in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), string(marshalResult(t, res))); diff != "" {
				t.Errorf("output depends on input order (-sorted +reversed):\n%s", diff)
			}
		})
	}
}

func TestResultStatus(t *testing.T) {
	res := translateFile(t, filepath.Join("testdata", "conflicting_routes.in.yaml"))
	ref := ir.ObjectRef{Kind: KindMeshRoute, Namespace: "bookinfo", Name: "reviews-new"}
	st := res.Status(ref)
	if st == nil {
		t.Fatalf("Status(%v) = nil", ref)
	}
	got := []string{st.Conditions[0].Type, string(st.Conditions[0].Status), st.Conditions[0].Reason}
	if diff := cmp.Diff([]string{"Accepted", "False", "Conflicted"}, got); diff != "" {
		t.Errorf("Accepted condition (-want +got):\n%s", diff)
	}
	if st := res.Status(ir.ObjectRef{Kind: KindMeshRoute, Namespace: "bookinfo", Name: "nope"}); st != nil {
		t.Errorf("Status of an unknown object = %v, want nil", st)
	}
}
