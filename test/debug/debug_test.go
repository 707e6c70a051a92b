package debug

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/cli/commands"
	"github.com/capstanmesh/capstan/cli/output"
	"github.com/capstanmesh/capstan/test/debugfixture"
	"github.com/capstanmesh/capstan/test/envtest"
	"github.com/capstanmesh/capstan/webhook/inject"
	"github.com/capstanmesh/capstan/xds/debugapi"
)

// capstanctl runs the CLI in-process with kubeconfig and returns its
// output, error output and exit status.
func capstanctl(t *testing.T, kubeconfig string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := commands.Execute("capstanctl", append(args, "--kubeconfig", kubeconfig), strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), code
}

// The whole path: capstanctl → kube-apiserver (authentication, services/proxy
// authorization, service proxy) → debug endpoint (TokenReview,
// SubjectAccessReview) → the xDS server's state.
func TestThroughTheServiceProxy(t *testing.T) {
	m := start(t)
	viewer := kubeconfigWithToken(t, m.tokens["viewer"])
	t.Run("proxy-status", func(t *testing.T) { testProxyStatus(t, viewer) })
	t.Run("proxy-config", func(t *testing.T) { testProxyConfig(t, viewer, m.web) })
	t.Run("bootstrap", func(t *testing.T) { testBootstrap(t) })
	t.Run("refusals", func(t *testing.T) { testRefusals(t, m) })
	t.Run("direct", func(t *testing.T) { testDirect(t, m) })
	t.Run("unreachable", func(t *testing.T) { testUnreachable(t, m) })
}

// An operator whose endpoint does not answer (a replica that is not the
// leader, or one starting): capstanctl retries, then says so.
func testUnreachable(t *testing.T, m *mesh) {
	ns := "capstan-down"
	ensureNamespace(t, ns)
	lis, err := net.Listen("tcp", net.JoinHostPort(m.ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(lis.Addr().String())
	if err := lis.Close(); err != nil {
		t.Fatal(err)
	}
	expose(t, ns, m.ip, port)
	_, errOut, code := capstanctl(t, env.Kubeconfig, "proxy-status", "--operator-namespace", ns, "--token", m.tokens["viewer"])
	if code != 1 || !strings.Contains(errOut, "the operator's debug endpoint (service "+ns+"/capstan-debug port 15014) is not reachable") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func testProxyStatus(t *testing.T, kubeconfig string) {
	var res commands.ProxyStatusResult
	envtest.Eventually(t, waitTimeout, func() error { // RBAC reaches the authorizer's cache; the clients ACK
		out, errOut, code := capstanctl(t, kubeconfig, "proxy-status", "-o", "json")
		if code != 0 {
			return fmt.Errorf("exit %d: %s", code, errOut)
		}
		res = commands.ProxyStatusResult{}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			return err
		}
		return expectStates(res)
	})
	table, _, code := capstanctl(t, kubeconfig, "proxy-status")
	if code != 0 || !strings.Contains(table, "NACK") || !strings.Contains(table, "clusters: "+nackText) {
		t.Errorf("table (exit %d):\n%s", code, table)
	}
	yamlOut, _, code := capstanctl(t, kubeconfig, "proxy-status", "-o", "yaml")
	if code != 0 || !strings.Contains(yamlOut, "message: '"+nackText+"'") && !strings.Contains(yamlOut, "message: "+nackText) {
		t.Errorf("yaml (exit %d):\n%s", code, yamlOut)
	}
}

// expectStates: web SYNCED on every type, cart NACKing clusters with its
// words, admin known but never connected.
func expectStates(res commands.ProxyStatusResult) error {
	byPod := map[string]debugapi.Proxy{}
	for _, p := range res.Proxies {
		byPod[p.Pod] = p
	}
	if len(byPod) != 3 {
		return fmt.Errorf("proxies %v, want web-0, cart-0 and admin-0", byPod)
	}
	for _, ts := range byPod["web-0"].Types {
		if ts.State != debugapi.StateSynced || ts.Acked != ts.Served {
			return fmt.Errorf("web-0 %s: %+v", ts.Type, ts)
		}
	}
	for _, ts := range byPod["cart-0"].Types {
		nack := ts.Type == debugapi.TypeClusters
		if nack != (ts.State == debugapi.StateNack) || nack && (ts.LastNack == nil || ts.LastNack.Message != nackText) {
			return fmt.Errorf("cart-0 %s: %+v", ts.Type, ts)
		}
	}
	if a := byPod["admin-0"]; a.Streams != 0 || a.Namespace != "ops" {
		return fmt.Errorf("admin-0: %+v", a)
	}
	return nil
}

func testProxyConfig(t *testing.T, kubeconfig string, web debugfixture.Config) {
	for _, f := range output.Formats {
		out, errOut, code := capstanctl(t, kubeconfig, "proxy-config", "web-0", "secrets", "-n", "shop", "-o", string(f))
		if code != 0 {
			t.Fatalf("secrets -o %s: exit %d: %s", f, code, errOut)
		}
		web.CheckNoKeyMaterial(t, "proxy-config secrets -o "+string(f), []byte(out))
		if !strings.Contains(out, "spiffe://cluster.local/ns/shop/sa/web") && f == output.Table {
			t.Errorf("the certificate is not shown:\n%s", out)
		}
	}
	out, errOut, code := capstanctl(t, kubeconfig, "proxy-config", "web-0", "-o", "json") // listeners, the context's namespace
	var res commands.ProxyConfigResult
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || len(res.Resources) != 1 || res.Resources[0].Name != debugfixture.Listener {
		t.Errorf("listeners (exit %d, %s):\n%s", code, errOut, out)
	}
	for typ, name := range map[string]string{"routes": debugfixture.Route, "clusters": debugfixture.Cluster, "endpoints": "10.0.0.8:8080"} {
		out, errOut, code := capstanctl(t, kubeconfig, "proxy-config", "web-0", typ)
		if code != 0 || !strings.Contains(out, name) {
			t.Errorf("%s (exit %d, %s):\n%s", typ, code, errOut, out)
		}
	}
}

// bootstrap is read from the pod with the user's own rights.
func testBootstrap(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "shop"},
		Spec: corev1.PodSpec{ServiceAccountName: "default", Containers: []corev1.Container{{Name: "app", Image: "web:1"}}}}
	injected, err := inject.Inject(pod, inject.ConfigFromMesh(&meshv1alpha1.Mesh{}, inject.Options{OperatorNamespace: operatorNS, Version: "v9.9.9"}))
	if err != nil {
		t.Fatal(err)
	}
	createAll(t, injected)
	injected.Status = corev1.PodStatus{PodIP: "10.0.0.7", PodIPs: []corev1.PodIP{{IP: "10.0.0.7"}}}
	if err := env.Client.Status().Update(context.Background(), injected); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := capstanctl(t, env.Kubeconfig, "proxy-config", "web-0", "bootstrap", "-n", "shop")
	if code != 0 || !strings.Contains(out, webNode) || !strings.Contains(out, "v9.9.9") {
		t.Errorf("bootstrap (exit %d, %s):\n%s", code, errOut, out)
	}
}

func testRefusals(t *testing.T, m *mesh) {
	shopDev := kubeconfigWithToken(t, m.tokens["shop-dev"])
	for _, tc := range []struct {
		name, kubeconfig string
		args             []string
		wantCode         int
		want             string
	}{
		{"namespace user, own namespace", shopDev, []string{"proxy-status", "-n", "shop"}, 0, "cart-0"},
		{"namespace user, own pod", shopDev, []string{"proxy-config", "web-0", "-n", "shop"}, 0, debugfixture.Listener},
		{"namespace user, every namespace", shopDev, []string{"proxy-status"}, 1, `may not get proxies/status.mesh.capstan.dev in every namespace`},
		{"namespace user, other namespace", shopDev, []string{"proxy-config", "admin-0", "-n", "ops"}, 1, `may not get proxies/config.mesh.capstan.dev in namespace ops`},
		{"no proxies rights", kubeconfigWithToken(t, m.tokens["no-proxies"]), []string{"proxy-status"}, 1, "may not get proxies/status"},
		{"no service proxy rights", kubeconfigWithToken(t, m.tokens["outsider"]), []string{"proxy-status"}, 1, `cannot get resource "services/proxy"`},
		// The admin kubeconfig authenticates with a client certificate:
		// nothing to repeat to the endpoint, unless --token says.
		{"client certificate", env.Kubeconfig, []string{"proxy-status"}, 1, "no bearer token"},
		{"client certificate and --token", env.Kubeconfig, []string{"proxy-status", "--token", m.tokens["viewer"]}, 0, "web-0"},
		{"forged token", env.Kubeconfig, []string{"proxy-status", "--token", "forged"}, 1, "token not authenticated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut string
			var code int
			envtest.Eventually(t, waitTimeout, func() error { // bindings reach the authorizer's cache
				out, errOut, code = capstanctl(t, tc.kubeconfig, tc.args...)
				if code != tc.wantCode || !strings.Contains(out+errOut, tc.want) {
					return fmt.Errorf("exit %d, want %d with %q:\n%s%s", code, tc.wantCode, tc.want, out, errOut)
				}
				return nil
			})
			if tc.kubeconfig == shopDev && strings.Contains(out, "admin-0") {
				t.Errorf("a namespace user sees another namespace's proxy:\n%s", out)
			}
		})
	}
}

// A client that reaches the endpoint directly, around the API server, is
// checked all the same.
func testDirect(t *testing.T, m *mesh) {
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the test checks authorization, not the certificate
	defer c.CloseIdleConnections()
	get := func(header, value string) int {
		req, err := http.NewRequest(http.MethodGet, "https://"+m.addr+debugapi.PathProxies, nil)
		if err != nil {
			t.Fatal(err)
		}
		if header != "" {
			req.Header.Set(header, value)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	if code := get("", ""); code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", code)
	}
	if code := get("Authorization", "Bearer "+m.tokens["no-proxies"]); code != http.StatusForbidden {
		t.Errorf("token without the proxies resource: %d, want 403", code)
	}
	if code := get("Authorization", "Bearer "+m.tokens["viewer"]); code != http.StatusOK {
		t.Errorf("viewer: %d, want 200", code)
	}
}
