package inject

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capstanmesh/capstan/internal/envoytest"
	"github.com/capstanmesh/capstan/internal/re2"
)

// TestBootstrapPinsRegexLimit checks that the bootstrap sets Envoy's RE2
// program size limits to the one Capstan enforces.
func TestBootstrapPinsRegexLimit(t *testing.T) {
	var b struct {
		LayeredRuntime struct {
			Layers []struct {
				Name        string         `json:"name"`
				StaticLayer map[string]int `json:"static_layer"`
				AdminLayer  *struct{}      `json:"admin_layer"`
			} `json:"layers"`
		} `json:"layered_runtime"`
	}
	if err := json.Unmarshal([]byte(bootstrapJSON(ConfigFromMesh(nil, goldenOptions), "web")), &b); err != nil {
		t.Fatal(err)
	}
	layers := b.LayeredRuntime.Layers
	if len(layers) != 2 || layers[1].AdminLayer == nil {
		t.Fatalf("runtime layers %+v, want a static layer then the admin layer", layers)
	}
	for _, key := range []string{"re2.max_program_size.error_level", "re2.max_program_size.warn_level"} {
		if got := layers[0].StaticLayer[key]; got != re2.MaxProgramSize {
			t.Errorf("%s = %d, want %d", key, got, re2.MaxProgramSize)
		}
	}
}

// TestEnvoyAppliesCapstansRegexLimit loads the injector's bootstrap in the
// real Envoy (--mode validate) with a route whose regex is exactly at
// Capstan's limit (accepted), then one instruction above it (refused by
// Envoy, which names the same program size Capstan measures).
func TestEnvoyAppliesCapstansRegexLimit(t *testing.T) {
	envoy := envoytest.Path(t)
	at, above := "[a-z0-9]{0,32}", "[a-z0-9]{0,32}x"
	if n, err := re2.ProgramSize(at); n != re2.MaxProgramSize || err != nil {
		t.Fatalf("ProgramSize(%q) = %d, %v; want the limit %d", at, n, err, re2.MaxProgramSize)
	}
	if n, _ := re2.ProgramSize(above); n != re2.MaxProgramSize+1 {
		t.Fatalf("ProgramSize(%q) = %d, want %d", above, n, re2.MaxProgramSize+1)
	}
	if out, err := validateWithRoute(t, envoy, at); err != nil {
		t.Errorf("Envoy refused a regex at the limit: %v\n%s", err, out)
	}
	out, err := validateWithRoute(t, envoy, above)
	want := "RE2 program size of 101 > max program size of 100 set for the error level threshold"
	if err == nil || !strings.Contains(out, want) {
		t.Errorf("Envoy on a regex above the limit: %v, output:\n%s\nwant a refusal containing %q", err, out, want)
	}
}

// validateWithRoute runs envoy --mode validate on the injected bootstrap
// plus a static listener with one route matching the path with regex.
func validateWithRoute(t *testing.T, envoy, regex string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root-cert.pem") // Envoy checks that the file exists
	if err := os.WriteFile(root, []byte("unused"), 0o600); err != nil {
		t.Fatal(err)
	}
	var b map[string]any
	if err := json.Unmarshal([]byte(strings.ReplaceAll(bootstrapJSON(ConfigFromMesh(nil, goldenOptions), "web"), RootCAPath, root)), &b); err != nil {
		t.Fatal(err)
	}
	b["static_resources"] = map[string]any{"listeners": []any{regexListener(regex)}}
	data, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "bootstrap.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(envoy, "--mode", "validate", "-c", path, "--log-level", "warn", "--disable-hot-restart").CombinedOutput()
	return string(out), err
}

func regexListener(regex string) map[string]any {
	loopback := map[string]any{"socket_address": map[string]any{"address": "127.0.0.1", "port_value": 0}}
	route := map[string]any{
		"match":           map[string]any{"safe_regex": map[string]any{"regex": regex}},
		"direct_response": map[string]any{"status": 200},
	}
	hcm := map[string]any{
		"@type":       "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
		"stat_prefix": "regex",
		"http_filters": []any{map[string]any{"name": "envoy.filters.http.router", "typed_config": map[string]any{
			"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}},
		"route_config": map[string]any{"virtual_hosts": []any{map[string]any{
			"name": "all", "domains": []string{"*"}, "routes": []any{route}}}},
	}
	return map[string]any{"name": "regex", "address": loopback, "filter_chains": []any{map[string]any{
		"filters": []any{map[string]any{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}}}}}
}
