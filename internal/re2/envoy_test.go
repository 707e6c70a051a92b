package re2_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/capstanmesh/capstan/internal/envoytest"
	"github.com/capstanmesh/capstan/internal/re2"
)

// exactCorpus are shapes for which the model gives RE2's count exactly.
var exactCorpus = []string{
	"a", "abcdefghij", "[a-z0-9]", "[^/]", ".", `\w`, `\d{0,40}`, "[a-z]{0,20}", "(abc){0,5}",
	"(?i)k", "(?i)[a-z]{0,9}", "[0-9a-fA-F]{0,10}", `\S{0,15}`, `\s{0,20}`, "(?s).{0,20}",
	"[a-z0-9]{0,32}", "[a-z0-9]{0,32}x", "/items/[a-z0-9]{0,100}", "a{2,5}", "(a)", `\b`, "[[:^alpha:]]",
}

// TestModelAgreesWithEnvoy runs the real Envoy over a corpus (the shapes
// above and several hundred random ASCII regexes): Envoy must accept every
// pattern Capstan parses; for every pattern Capstan accepts, Envoy's RE2
// program size must not exceed Capstan's measure (so Envoy accepts it too);
// and for the exact corpus the two must be equal.
func TestModelAgreesWithEnvoy(t *testing.T) {
	envoy := envoytest.Path(t)
	exact := map[string]bool{}
	for _, p := range exactCorpus {
		exact[p] = true
	}
	patterns := append(append(append([]string{}, exactCorpus...), randomPatterns(400, 3)...), randomPatterns(400, 1)...)
	measured := map[string]int{}
	var kept []string
	for _, p := range patterns {
		size, err := re2.ProgramSize(p)
		if err != nil && !errors.Is(err, re2.ErrTooLarge) {
			continue // refused for another reason: Envoy never sees it
		}
		if _, seen := measured[p]; !seen && size > 0 {
			measured[p] = size
			kept = append(kept, p)
		}
	}
	got := envoyProgramSizes(t, envoy, kept)
	same, under := 0, 0
	for _, p := range kept {
		envoySize, ok := got[p]
		switch {
		case !ok:
			t.Errorf("Envoy reported no program size for %q", p)
		case envoySize > measured[p] && measured[p] <= re2.MaxProgramSize:
			t.Errorf("%q: Envoy's RE2 program size %d is above Capstan's measure %d", p, envoySize, measured[p])
		case envoySize > measured[p]:
			under++ // refused by both anyway
		case exact[p] && envoySize != measured[p]:
			t.Errorf("%q: Envoy's RE2 program size %d, Capstan's measure %d; want equal", p, envoySize, measured[p])
		case envoySize == measured[p]:
			same++
		}
	}
	t.Logf("%d patterns: Capstan's measure equals Envoy's for %d, is below it for %d (all above the limit), above it for the rest",
		len(kept), same, under)
}

// randomPatterns builds n ASCII regexes (fixed seed) from the constructs
// routes use: literals, classes, repetitions, groups, alternations, anchors.
func randomPatterns(n, depth int) []string {
	rng := rand.New(rand.NewPCG(11, uint64(depth)))
	out := make([]string, 0, n)
	for range n {
		out = append(out, randomRegex(rng, depth))
	}
	return out
}

var atoms = []string{
	"a", "b", "/", "-", "_", `\.`, "[a-z]", "[0-9]", "[a-z0-9]", "[^/]", ".", `\w`, `\d`, `\s`, `\S`,
	"[A-Za-z]", "[0-9a-fA-F]", "[^a-z]", `\W`, "(?i:x)", "(?i:[a-c])", "(?s:.)", "[[:alpha:]]", "[a-c_.-]",
}

func randomRegex(rng *rand.Rand, depth int) string {
	var s string
	for range 1 + rng.IntN(4) {
		s += randomTerm(rng, depth)
	}
	switch rng.IntN(6) {
	case 0:
		s = "^" + s
	case 1:
		s += "$"
	case 2:
		s = "^" + s + "$"
	}
	return s
}

func randomTerm(rng *rand.Rand, depth int) string {
	var t string
	switch k := rng.IntN(8); {
	case depth > 0 && k == 0:
		t = "(" + randomRegex(rng, depth-1) + "|" + randomRegex(rng, depth-1) + ")"
	case depth > 0 && k == 1:
		t = "(?:" + randomRegex(rng, depth-1) + ")"
	default:
		t = atoms[rng.IntN(len(atoms))]
	}
	switch rng.IntN(7) {
	case 0:
		t += "*"
	case 1:
		t += "+"
	case 2:
		t += "?"
	case 3:
		t += fmt.Sprintf("{%d}", 1+rng.IntN(6))
	case 4:
		lo := rng.IntN(4)
		t += fmt.Sprintf("{%d,%d}", lo, lo+1+rng.IntN(12))
	}
	return t
}

var warnLine = regexp.MustCompile(`regex '(.*)' RE2 program size of (\d+) > max program size of 0 set for the warn level`)

// envoyProgramSizes validates one static config holding a route per pattern,
// with the warn level at 0 so that Envoy logs every program's size.
func envoyProgramSizes(t *testing.T, envoy string, patterns []string) map[string]int {
	t.Helper()
	routes := make([]any, 0, len(patterns))
	for _, p := range patterns {
		routes = append(routes, map[string]any{
			"match":           map[string]any{"safe_regex": map[string]any{"regex": p}},
			"direct_response": map[string]any{"status": 200},
		})
	}
	cfg := staticConfig(routes, map[string]int{
		"re2.max_program_size.error_level": 1 << 20, "re2.max_program_size.warn_level": 0,
	})
	out := validate(t, envoy, cfg)
	sizes := map[string]int{}
	for _, m := range warnLine.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[2])
		sizes[m[1]] = n
	}
	return sizes
}

func staticConfig(routes []any, runtime map[string]int) map[string]any {
	hcm := map[string]any{
		"@type":       "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
		"stat_prefix": "regex",
		"http_filters": []any{map[string]any{"name": "envoy.filters.http.router", "typed_config": map[string]any{
			"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}},
		"route_config": map[string]any{"virtual_hosts": []any{map[string]any{
			"name": "all", "domains": []string{"*"}, "routes": routes}}},
	}
	return map[string]any{
		"admin":           map[string]any{"address": loopback()},
		"layered_runtime": map[string]any{"layers": []any{map[string]any{"name": "test", "static_layer": runtime}}},
		"static_resources": map[string]any{"listeners": []any{map[string]any{
			"name": "regex", "address": loopback(),
			"filter_chains": []any{map[string]any{"filters": []any{map[string]any{
				"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}}}},
		}}},
	}
}

func loopback() map[string]any {
	return map[string]any{"socket_address": map[string]any{"address": "127.0.0.1", "port_value": 0}}
}

// validate runs envoy --mode validate on cfg and returns its output; it
// fails the test when Envoy refuses the config.
func validate(t *testing.T, envoy string, cfg map[string]any) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bootstrap.json")
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(envoy, "--mode", "validate", "-c", path, "--log-level", "warn", "--disable-hot-restart").CombinedOutput()
	if err != nil {
		t.Fatalf("envoy --mode validate: %v\n%s", err, out)
	}
	return string(out)
}
