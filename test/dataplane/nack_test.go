package dataplane

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/test/envtest"
)

// strictRE2Limit is the RE2 program size above which the strict sidecar's
// Envoy refuses a regex; the bootstrap (and admission) allow 100.
const strictRE2Limit = 5

// nackRegex is a path regex admitted by the mesh and accepted by a stock
// sidecar, whose RE2 program is larger than strictRE2Limit.
const nackRegex = "/nack/v[0-9]+/items"

// changeBootstrap applies change to the JSON bootstrap that follows
// --config-yaml in argv.
func changeBootstrap(t *testing.T, argv []string, change func(map[string]any)) {
	t.Helper()
	for i := 0; i+1 < len(argv); i++ {
		if argv[i] != "--config-yaml" {
			continue
		}
		var b map[string]any
		if err := json.Unmarshal([]byte(argv[i+1]), &b); err != nil {
			t.Fatalf("the sidecar's bootstrap is not JSON: %v", err)
		}
		change(b)
		out, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		argv[i+1] = string(out)
		return
	}
	t.Fatalf("no --config-yaml in the sidecar's command %q", argv)
}

// stricterRE2 adds a runtime layer, after the bootstrap's own, that lowers
// the RE2 program size Envoy accepts.
func stricterRE2(b map[string]any) {
	rt, _ := b["layered_runtime"].(map[string]any)
	if rt == nil {
		rt = map[string]any{}
		b["layered_runtime"] = rt
	}
	layers, _ := rt["layers"].([]any)
	rt["layers"] = append(layers, map[string]any{"name": "strict", "static_layer": map[string]any{
		"re2.max_program_size.error_level": strictRE2Limit, "re2.max_program_size.warn_level": strictRE2Limit}})
}

// TestEnvoyRejectsRoute: one sidecar runs with a stricter RE2 limit than
// the bootstrap sets, so Envoy itself rejects (NACKs) a route with a regex
// the other sidecars accept. The MeshRoute shows Programmed=False, reason
// Rejected, with Envoy's words and the proxy's name; status.proxies counts
// the two others; `kubectl get meshroutes` shows it; a stock client's calls
// still follow the route.
func TestEnvoyRejectsRoute(t *testing.T) {
	needRoot(t)
	ns := meshNamespace(t)
	svc := createService(t, ns, "server", "server", httpPort(scopedPort, scopedPort))
	v1 := versionedServer(t, ns, "v1")
	setEndpoints(t, svc, v1)
	stock := startPod(t, podSpec{name: "stock", namespace: ns})
	startPod(t, podSpec{name: "strict", namespace: ns, bootstrap: stricterRE2})

	mr := &meshv1alpha1.MeshRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "server", Namespace: ns},
		Spec: meshv1alpha1.MeshRouteSpec{Hosts: []string{"server"}, HTTP: []meshv1alpha1.HTTPRule{{
			Match:   []meshv1alpha1.HTTPMatch{{Path: &meshv1alpha1.PathMatch{Type: meshv1alpha1.MatchRegularExpression, Value: nackRegex}}},
			Route:   []meshv1alpha1.Destination{{Host: "server"}},
			Headers: &meshv1alpha1.HeaderEdits{Request: &meshv1alpha1.HeaderOperations{Set: map[string]string{"x-capstan-route": "regex"}}},
		}}},
	}
	if err := env.Client.Create(context.Background(), mr); err != nil {
		t.Fatal(err)
	}
	var prog *metav1.Condition
	envtest.Eventually(t, wait, func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(mr), mr); err != nil {
			return err
		}
		prog = meta.FindStatusCondition(mr.Status.Conditions, meshv1alpha1.ConditionProgrammed)
		if prog == nil || prog.Status != metav1.ConditionFalse || prog.Reason != meshv1alpha1.ReasonRejected || prog.ObservedGeneration != mr.Generation {
			return fmt.Errorf("Programmed %+v, want False/Rejected at generation %d", prog, mr.Generation)
		}
		if p := mr.Status.Proxies; p == nil || p.Summary != "2/3" {
			return fmt.Errorf("status.proxies %+v, want 2/3 (the server and the stock client)", p)
		}
		return nil
	})
	for _, want := range []string{ns + "/strict", "RE2 program size", nackRegex} {
		if !strings.Contains(prog.Message, want) {
			t.Errorf("Programmed message %q does not contain %q", prog.Message, want)
		}
	}
	t.Logf("Programmed: %s", prog.Message)

	// The stock sidecar programs the route: a call to the regex path gets
	// the route's header on its way to the server (the Service's default
	// route would answer it too, without the header).
	waitRouteHeader(t, stock, serviceURL(svc, "/nack/v2/items"), "x-capstan-route", "regex")

	out := kubectl(t, "get", "meshroutes", "-n", ns)
	t.Logf("kubectl get meshroutes:\n%s", out)
	if !strings.Contains(out, "PROXIES") || !rowHas(out, "server", "False", "2/3") {
		t.Errorf("kubectl get meshroutes:\n%s\nwant the server row with Programmed False and PROXIES 2/3", out)
	}
	wantRejectedEvent(t, ns, "server")
}

// rowHas reports whether a table row starting with name holds every field.
func rowHas(table, name string, fields ...string) bool {
	for _, line := range strings.Split(table, "\n") {
		cols := strings.Fields(line)
		if len(cols) == 0 || cols[0] != name {
			continue
		}
		for _, f := range fields {
			if !strings.Contains(" "+strings.Join(cols, " ")+" ", " "+f+" ") {
				return false
			}
		}
		return true
	}
	return false
}

// kubectl runs the built kubectl against the test API server.
func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(env.Kubectl, append([]string{"--kubeconfig", env.Kubeconfig}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// wantRejectedEvent polls for a Warning Event with reason Rejected on the MeshRoute.
func wantRejectedEvent(t *testing.T, ns, name string) {
	t.Helper()
	envtest.Eventually(t, wait, func() error {
		out := kubectl(t, "get", "events", "-n", ns, "--field-selector", "involvedObject.name="+name+",reason="+meshv1alpha1.ReasonRejected, "-o", "name")
		if strings.TrimSpace(out) == "" {
			return fmt.Errorf("no %s Event on MeshRoute %s/%s", meshv1alpha1.ReasonRejected, ns, name)
		}
		return nil
	})
}

// TestMeshStatusReportsRuntime: with real sidecars connected, the Mesh's
// status counts them and says when the first workload certificate expires
// (within the default 24h lifetime).
func TestMeshStatusReportsRuntime(t *testing.T) {
	needRoot(t)
	setMesh(t, meshv1alpha1.MeshSpec{})
	ns := meshNamespace(t)
	startPod(t, podSpec{name: "one", namespace: ns})
	startPod(t, podSpec{name: "two", namespace: ns})
	envtest.Eventually(t, wait, func() error {
		mesh := &meshv1alpha1.Mesh{}
		if err := env.Client.Get(context.Background(), client.ObjectKey{Name: meshv1alpha1.MeshName}, mesh); err != nil {
			return err
		}
		st := mesh.Status
		if st.ConnectedProxies == nil || st.ConnectedProxies.Sidecars < 2 {
			return fmt.Errorf("status.connectedProxies %+v, want at least 2 sidecars", st.ConnectedProxies)
		}
		now := time.Now()
		if e := st.EarliestCertificateExpiry; e == nil || !e.After(now) || e.After(now.Add(25*time.Hour)) {
			return fmt.Errorf("status.earliestCertificateExpiry %v, want within the next 24h", e)
		}
		return nil
	})
}
