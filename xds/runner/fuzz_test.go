package runner

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/capstanmesh/capstan/xds/generate"
	"github.com/capstanmesh/capstan/xds/translate"
)

// FuzzTranslateGenerate runs the whole pipeline on random inputs that
// admission would accept (see fuzzInputs): translation must not fail (its
// errors are bugs), must not touch its input and must not depend on the order
// of the input lists; generation for every proxy of the model must not fail
// as a whole (per-object generate.Errors are fine) and its output must pass
// Resources.Validate.
func FuzzTranslateGenerate(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("canary split of reviews v1/v2 with retries, mirror and a fault"))
	f.Add(fuzzSeedSequence(256, 1))
	f.Add(fuzzSeedSequence(1024, 7))
	f.Add(fuzzSeedSequence(2048, 31))
	// Three namespaces, the mesh, five services, routes and policies, every
	// choice the first or the second option.
	f.Add([]byte{2, 1, 0, 1, 1, 0, 1, 1, 4, 0, 4, 1, 0, 1, 0, 3, 1, 1, 1, 1, 2, 1, 0, 0, 1, 2, 3, 4, 4, 4, 4, 4, 4, 3, 3, 3, 3,
		1, 0, 1, 0, 1, 0, 1, 0, 2, 2, 2, 2, 2, 2, 2, 2, 4, 4, 4, 4, 3, 2, 1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := buildFuzzInputs(data)
		before := in.DeepCopy()
		res, err := translate.Translate(in)
		if err != nil {
			t.Fatalf("Translate failed (a bug, user mistakes must become conditions): %v\ninputs: %s", err, fuzzJSON(t, before))
		}
		if !reflect.DeepEqual(in, before) {
			t.Fatalf("Translate modified its input\nbefore: %s\nafter: %s", fuzzJSON(t, before), fuzzJSON(t, in))
		}
		reversed := fuzzReversed(before)
		res2, err := translate.Translate(reversed)
		if err != nil {
			t.Fatalf("Translate of the reversed inputs failed: %v", err)
		}
		if a, b := fuzzJSON(t, res), fuzzJSON(t, res2); a != b {
			t.Fatalf("Translate depends on the order of the input lists\ninputs: %s\nresult: %s\nreversed: %s", fuzzJSON(t, before), a, b)
		}

		for _, p := range res.Mesh.Proxies {
			out, err := generate.ForProxy(res.Mesh, p)
			var perObject generate.Errors
			if err != nil && !errors.As(err, &perObject) {
				t.Fatalf("ForProxy(%s) failed as a whole: %v\ninputs: %s", p.ID, err, fuzzJSON(t, before))
			}
			if out == nil {
				t.Fatalf("ForProxy(%s) returned no resources with error %v", p.ID, err)
			}
			if err := out.Validate(); err != nil {
				t.Fatalf("ForProxy(%s) output is invalid: %v\ninputs: %s", p.ID, err, fuzzJSON(t, before))
			}
		}
	})
}

// fuzzSeedSequence is a deterministic pseudo-random seed of n bytes.
func fuzzSeedSequence(n int, seed uint32) []byte {
	out := make([]byte, n)
	x := seed
	for i := range out {
		x = x*1664525 + 1013904223
		out[i] = byte(x >> 24)
	}
	return out
}

// fuzzReversed returns a copy of in with every list in reverse order.
func fuzzReversed(in *translate.Inputs) *translate.Inputs {
	out := in.DeepCopy()
	slices.Reverse(out.MeshRoutes)
	slices.Reverse(out.DestinationPolicies)
	slices.Reverse(out.PeerAuthentications)
	slices.Reverse(out.Services)
	slices.Reverse(out.EndpointSlices)
	slices.Reverse(out.Pods)
	slices.Reverse(out.Namespaces)
	return out
}

func fuzzJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return string(b)
}
