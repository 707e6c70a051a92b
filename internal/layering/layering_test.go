package layering

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// moduleRoot is the directory of go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// TestModuleLayering checks every rule on Capstan's own import graph.
func TestModuleLayering(t *testing.T) {
	graph, err := Load(moduleRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	// Every rule must cover at least one package, or a moved package would
	// silently escape it.
	for _, r := range Rules {
		if !slices.ContainsFunc(graph, func(p Package) bool { return !p.Standard && r.covers(p.ImportPath) }) {
			t.Errorf("rule %q covers no package of the module", r.Name)
		}
	}
	for _, v := range Check(graph, Rules) {
		t.Errorf("%s", v)
	}
}

// TestCheckReportsTransitiveViolations runs the rules on a small graph
// that breaks them on purpose: the violation is two imports away, so a
// check of direct imports would miss it.
func TestCheckReportsTransitiveViolations(t *testing.T) {
	graph := []Package{
		{ImportPath: m("controllers"), Imports: []string{m("xds/auth/kubeauth"), "fmt"}},
		{ImportPath: m("xds/auth/kubeauth"), Imports: []string{m("xds/server")}},
		{ImportPath: m("xds/server"), Imports: []string{"github.com/envoyproxy/go-control-plane/pkg/cache/v3"}},
		{ImportPath: "github.com/envoyproxy/go-control-plane/pkg/cache/v3", Imports: []string{"fmt"}},
		{ImportPath: m("xds/ir"), Imports: []string{"strings", m("xds/ir/names")}},
		{ImportPath: m("xds/ir/names"), Imports: []string{"github.com/google/go-cmp/cmp"}},
		{ImportPath: "github.com/google/go-cmp/cmp"},
		{ImportPath: "fmt", Standard: true},
		{ImportPath: "strings", Standard: true},
	}
	var got []string
	for _, v := range Check(graph, Rules) {
		got = append(got, v.String())
	}
	want := []string{
		"controllers never reach Envoy or the xDS server: " +
			m("controllers") + " -> " + m("xds/auth/kubeauth") + " -> " + m("xds/server"),
		"the ir model is plain Go: " + m("xds/ir") + " -> " + m("xds/ir/names") + " -> github.com/google/go-cmp/cmp",
		"the ir model is plain Go: " + m("xds/ir/names") + " -> github.com/google/go-cmp/cmp",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("violations (-want +got):\n%s", diff)
	}
}

// TestCheckAcceptsDownwardImports: the same graph without the offending
// edges passes, so the test above fails for the right reason.
func TestCheckAcceptsDownwardImports(t *testing.T) {
	graph := []Package{
		{ImportPath: m("controllers"), Imports: []string{m("xds/auth/kubeauth"), m("xds/translate")}},
		{ImportPath: m("xds/auth/kubeauth"), Imports: []string{m("xds/auth"), "sigs.k8s.io/controller-runtime/pkg/client"}},
		{ImportPath: m("xds/auth"), Imports: []string{"context"}},
		{ImportPath: m("xds/translate"), Imports: []string{m("xds/ir"), m("api/v1alpha1")}},
		{ImportPath: m("xds/ir"), Imports: []string{"strings"}},
		{ImportPath: m("api/v1alpha1"), Imports: []string{"k8s.io/apimachinery/pkg/apis/meta/v1"}},
		{ImportPath: "k8s.io/apimachinery/pkg/apis/meta/v1"},
		{ImportPath: "sigs.k8s.io/controller-runtime/pkg/client"},
		{ImportPath: "context", Standard: true},
		{ImportPath: "strings", Standard: true},
	}
	if v := Check(graph, Rules); len(v) != 0 {
		t.Errorf("violations on a clean graph: %v", v)
	}
}

func TestMatches(t *testing.T) {
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{m("pki"), m("pki"), true},
		{m("pki"), m("pki/certmanager"), false},
		{m("pki/..."), m("pki/certmanager"), true},
		{m("pki/..."), m("pkix"), false},
		{"github.com/envoyproxy/...", "github.com/envoyproxy/go-control-plane/envoy/config/core/v3", true},
	}
	for _, tt := range tests {
		if got := matches(tt.pattern, tt.path); got != tt.want {
			t.Errorf("matches(%q, %q) = %v, want %v", tt.pattern, tt.path, got, tt.want)
		}
	}
}
