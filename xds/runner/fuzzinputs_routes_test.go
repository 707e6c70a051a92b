package runner

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/capstanmesh/capstan/xds/generate"
	"github.com/capstanmesh/capstan/xds/ir"
	"github.com/capstanmesh/capstan/xds/translate"
)

// TestFuzzInputsSetEveryRouteFeatureField fails when FuzzTranslateGenerate's
// input builder (fuzzInputs) never yields a rule that sets a field a route
// feature of the generator handles: a new MeshRoute feature needs its
// builder too, or the fuzzer never reaches it.
func TestFuzzInputsSetEveryRouteFeatureField(t *testing.T) {
	seen := map[string]bool{}
	for seed := range uint32(300) {
		res, err := translate.Translate(buildFuzzInputs(fuzzSeedSequence(2048, seed)))
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		for _, s := range res.Mesh.Services {
			for _, r := range s.Routes {
				markRouteFields(t, seen, r)
			}
		}
	}
	for _, path := range generate.RouteFeatureFields() {
		if !seen[path] {
			t.Errorf("fuzzInputs (fuzzinputs_test.go) never yields a rule with %s set: build the MeshRoute field in rule()", path)
		}
	}
}

// markRouteFields notes which feature fields r sets (present in its JSON with
// a value other than a zero one).
func markRouteFields(t *testing.T, seen map[string]bool, r *ir.HTTPRoute) {
	t.Helper()
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, path := range generate.RouteFeatureFields() {
		if jsonSet(doc, strings.Split(path, ".")) {
			seen[path] = true
		}
	}
}

// jsonSet says whether the value at path in v is present and not zero.
func jsonSet(v any, path []string) bool {
	if len(path) > 0 {
		m, ok := v.(map[string]any)
		return ok && jsonSet(m[path[0]], path[1:])
	}
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case float64:
		return x != 0
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	}
	return true
}
