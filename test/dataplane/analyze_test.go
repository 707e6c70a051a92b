package dataplane

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/cli/analyze"
	"github.com/capstanmesh/capstan/cli/commands"
	"github.com/capstanmesh/capstan/test/envtest"
)

// TestAnalyzeLiveEvidence: `capstanctl analyze` reads the sidecars'
// counters through the real API server's pod proxy while real traffic
// flows (issue #16, live evidence for analyzers 2 and 3). A 50/50 route
// splits the meshed client's calls over server-v1 and server-v2, and a pod
// without a sidecar calls server-v1 directly, as kube-proxy would send it:
//   - under PERMISSIVE: CAP011 names server-v1 (plaintext requests a STRICT
//     policy would refuse) and not server-v2, and CAP012 gives the share of
//     the route's traffic that came around the mesh;
//   - under STRICT: the legacy calls fail, and CAP010 (an error) says the
//     sidecars of server-v1 refused them.
func TestAnalyzeLiveEvidence(t *testing.T) {
	needRoot(t)
	f := newRouteFixture(t)
	f.setRules(t, "split", meshv1alpha1.HTTPRule{Name: "split", Route: []meshv1alpha1.Destination{
		{Host: "server", Subset: "v1", Weight: ptr.To[int32](50)}, {Host: "server", Subset: "v2", Weight: ptr.To[int32](50)},
	}})
	legacy := startPod(t, podSpec{name: "legacy", namespace: f.ns, noInject: true})
	direct := "http://" + f.v1.netns.IP.String() + ":" + strconv.Itoa(appPort) + "/legacy"
	meshedCalls := startApp(t, f.client.netns, AppConfig{Mode: HTTPClient, URL: f.url("/meshed"), Interval: 50 * time.Millisecond, Name: "meshed"})
	legacyCalls := startApp(t, legacy.netns, AppConfig{Mode: HTTPClient, URL: direct, Interval: 50 * time.Millisecond, Timeout: time.Second, Name: "legacy"})
	// Both callers are answered before analyze starts its traffic window
	// (a loaded machine can take a while to start them).
	awaitAnswered(t, meshedCalls)
	awaitAnswered(t, legacyCalls)

	t.Run("permissive", func(t *testing.T) {
		res := analyzeLive(t, f.ns)
		v1 := findingFor(res, analyze.CodePlaintextCallers, "server-v1")
		if v1 == nil {
			t.Fatalf("no %s for server-v1: %+v", analyze.CodePlaintextCallers, res)
		}
		if findingFor(res, analyze.CodePlaintextCallers, "server-v2") != nil {
			t.Errorf("%s for server-v2, which only the mesh calls: %+v", analyze.CodePlaintextCallers, res.Findings)
		}
		share := findingFor(res, analyze.CodeMeshBypassShare, "server")
		if share == nil || !strings.Contains(share.Message, "came around the mesh") || !strings.Contains(share.Message, "server-v1") {
			t.Errorf("%s for the route: %+v", analyze.CodeMeshBypassShare, share)
		}
	})

	t.Run("strict", func(t *testing.T) {
		peerAuth(t, f.ns, "default", meshv1alpha1.PeerMTLSStrict, nil)
		seen := len(mustParse(t, legacyCalls.Output()))
		envtest.Eventually(t, wait, func() error {
			calls := mustParse(t, legacyCalls.Output())
			if len(calls) < seen+3 {
				return fmt.Errorf("%d legacy calls since STRICT", len(calls)-seen)
			}
			for _, c := range calls[len(calls)-3:] {
				if c.OK {
					return fmt.Errorf("legacy call %d still succeeds", c.N)
				}
			}
			return nil
		})
		res := analyzeLive(t, f.ns)
		refused := findingFor(res, analyze.CodePlaintextRefused, "server-v1")
		if refused == nil || refused.Severity != analyze.SeverityError || !strings.Contains(refused.Message, "refused") {
			t.Fatalf("no %s error for server-v1: %+v", analyze.CodePlaintextRefused, res.Findings)
		}
		if findingFor(res, analyze.CodePlaintextCallers, "server-v1") != nil {
			t.Errorf("%s for a STRICT workload: %+v", analyze.CodePlaintextCallers, res.Findings)
		}
	})
}

// awaitAnswered polls the output of a client started with startApp until
// one of its calls was answered.
func awaitAnswered(t *testing.T, caller *Proc) {
	t.Helper()
	envtest.Eventually(t, wait, func() error {
		for _, c := range mustParse(t, caller.Output()) {
			if c.OK {
				return nil
			}
		}
		return fmt.Errorf("no call of %s answered yet", caller.Name)
	})
}

// analyzeLive runs `capstanctl analyze -n ns -o json` on the live cluster
// with a 3 s traffic window.
func analyzeLive(t *testing.T, ns string) *commands.AnalyzeResult {
	t.Helper()
	var out, errOut bytes.Buffer
	code := commands.Execute("capstanctl", []string{"--kubeconfig", env.Kubeconfig, "analyze", "-n", ns, "--traffic-window", "3s", "-o", "json"},
		strings.NewReader(""), &out, &errOut)
	if code > 1 {
		t.Fatalf("capstanctl analyze exited %d: %s", code, errOut.String())
	}
	res := &commands.AnalyzeResult{}
	if err := json.Unmarshal(out.Bytes(), res); err != nil {
		t.Fatalf("parsing the analysis: %v\n%s", err, out.String())
	}
	for _, f := range res.Findings {
		t.Logf("%s %s: %s", f.Code, f.Object, f.Message)
	}
	if len(res.Notes) > 0 {
		t.Logf("notes: %q", res.Notes)
	}
	return res
}

// findingFor is the finding with code whose object is named name.
func findingFor(res *commands.AnalyzeResult, code, name string) *analyze.Finding {
	for i, f := range res.Findings {
		if f.Code == code && f.Object.Name == name {
			return &res.Findings[i]
		}
	}
	return nil
}
