package commands

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/capstanmesh/capstan/cli/output"
	"github.com/capstanmesh/capstan/internal/golden"
)

// run runs capstanctl with args and returns its output and exit status.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Execute("capstanctl", args, strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), code
}

// offlineCases run capstanctl on files: no cluster needed.
var offlineCases = []struct {
	name     string
	args     []string
	wantCode int
}{
	{"analyze-seed", []string{"analyze", "-f", "testdata/seed.yaml"}, 1},
	{"analyze-seed-batch", []string{"analyze", "-n", "batch", "-f", "testdata/seed.yaml"}, 0},
	{"analyze-clean", []string{"analyze", "-f", "testdata/clean.yaml"}, 0},
	{"inject", []string{"inject", "-f", "testdata/workloads.yaml"}, 0},
}

type renderedCase struct {
	name   string
	result output.Tabular
}

// renderedCases are results of commands that need a cluster, rendered
// in each format (the commands themselves run in test/cli).
var renderedCases = []renderedCase{
	{"version", &VersionResult{Client: ClientVersion{Version: "v1.2.3", GoVersion: "go1.26.8", Platform: "linux/amd64"},
		Server: &ServerVersion{Kubernetes: "v1.37.2", Operator: "v1.2.3", OperatorImage: "ghcr.io/capstanmesh/capstan:v1.2.3"}}},
	{"check", &CheckResult{Checks: []Check{
		{Name: "kubernetes-version", Status: CheckOK, Message: "Kubernetes v1.37.2 supports native sidecars (1.28+)"},
		{Name: "crds", Status: CheckOK, Message: "4 CRDs installed and current"},
		{Name: "operator", Status: CheckFailed, Message: "no Deployment labelled app.kubernetes.io/component=manager,app.kubernetes.io/name=capstan in namespace capstan-system (--operator-namespace)"},
		{Name: "webhook", Status: CheckFailed, Message: "webhook inject-pod.capstan.dev: caBundle is empty: the API server cannot verify the webhook's certificate"},
		{Name: "issuer", Status: CheckSkipped, Message: "the Mesh uses the built-in CA"},
	}}},
	{"restart-uninjected", &RestartResult{Namespace: "shop", Workloads: []RestartedWorkload{
		{Kind: "Deployment", Name: "cart", Pods: 2, Result: "restarted (generation 3)"},
		{Kind: "Pod", Name: "debug", Pods: 1, Result: "not restarted: no Deployment, StatefulSet or DaemonSet; delete and recreate it"},
	}}},
}

func TestGolden(t *testing.T) {
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	Version = "v0.0.0-test"
	produced := map[string]bool{}
	for _, tc := range offlineCases {
		for _, f := range output.Formats {
			path := filepath.Join("testdata", tc.name+"."+string(f)+".golden")
			produced[path] = true
			t.Run(tc.name+"/"+string(f), func(t *testing.T) {
				out, errOut, code := run(t, append(tc.args, "-o", string(f))...)
				if code != tc.wantCode {
					t.Errorf("exit status %d, want %d; stderr: %s", code, tc.wantCode, errOut)
				}
				golden.Check(t, path, []byte(out))
			})
		}
	}
	cases := append(slices.Clone(renderedCases), []renderedCase{
		{"proxy-status", proxyStatusResult},
		{"proxy-config-listeners", proxyConfigListeners},
		{"proxy-config-secrets", proxyConfigSecrets},
		{"proxy-config-bootstrap", bootstrapResult(t)},
	}...)
	for _, tc := range cases {
		for _, f := range output.Formats {
			path := filepath.Join("testdata", tc.name+"."+string(f)+".golden")
			produced[path] = true
			var b bytes.Buffer
			if err := output.Print(&b, f, tc.result); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, path, b.Bytes())
		}
	}
	golden.CheckOrphans(t, []string{".golden"}, produced)
}

func TestBadOutputFormat(t *testing.T) {
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	_, errOut, code := run(t, "analyze", "-f", "testdata/clean.yaml", "-o", "xml")
	if code != 1 || !strings.Contains(errOut, `unknown output format "xml"`) {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestInjectNeedsFile(t *testing.T) {
	_, errOut, code := run(t, "inject")
	if code != 1 || !strings.Contains(errOut, "-f FILE") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestImageTag(t *testing.T) {
	for image, want := range map[string]string{
		"ghcr.io/capstanmesh/capstan:v1.2.3": "v1.2.3", "localhost:5000/capstan": "", "capstan:v1@sha256:abc": "v1", "capstan": "",
	} {
		if got := imageTag(image); got != want {
			t.Errorf("imageTag(%q) = %q, want %q", image, got, want)
		}
	}
}
