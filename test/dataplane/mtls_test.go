package dataplane

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/test/envtest"
)

const appPort = 8080

// echoServer starts a meshed pod "server" running the HTTP app on
// appPort behind the Service server:80, and returns it with the Service.
// An app in spec gives the server its Hold and ServerOptions.
func echoServer(t *testing.T, ns string, spec podSpec) (*pod, *corev1.Service) {
	t.Helper()
	svc := createService(t, ns, "server", "server", httpPort(80, appPort))
	spec.name, spec.namespace = "server", ns
	app := AppConfig{Mode: HTTPServer, Port: appPort}
	if spec.app != nil {
		app.Hold, app.ServerOptions = spec.app.Hold, spec.app.ServerOptions
	}
	spec.app = &app
	spec.ports = []corev1.ContainerPort{{Name: "http", ContainerPort: appPort}}
	server := startPod(t, spec)
	setEndpoints(t, svc, server)
	return server, svc
}

// serviceURL is the Service's URL as an app in a pod writes it.
func serviceURL(svc *corev1.Service, path string) string {
	return "http://" + svc.Name + "." + svc.Namespace + ":" + strconv.Itoa(int(svc.Spec.Ports[0].Port)) + path
}

// waitCall polls a client in from until a call to url succeeds, and
// returns that call.
func waitCall(t *testing.T, from *pod, url string) CallResult {
	t.Helper()
	var ok CallResult
	envtest.Eventually(t, wait, func() error {
		res := calls(t, from.netns, AppConfig{Mode: HTTPClient, URL: url, Count: 1, Timeout: 3 * time.Second})
		if len(res) != 1 || !res[0].OK {
			return fmt.Errorf("%s from %s: %+v", url, from.obj.Name, res)
		}
		ok = res[0]
		return nil
	})
	return ok
}

// waitRouteHeader polls until a call from p to url reaches an app that
// saw the request header name set to value, which only the route under
// test sets: that the call succeeds proves nothing while another route
// (the Service's default) answers it too.
func waitRouteHeader(t *testing.T, p *pod, url, name, value string) {
	t.Helper()
	envtest.Eventually(t, wait, func() error {
		res := callsFrom(t, p, url, 1)
		if len(res) != 1 || res[0].Report == nil {
			return fmt.Errorf("call from %s to %s: %+v", p.obj.Name, url, res)
		}
		if got := res[0].Report.Headers[http.CanonicalHeaderKey(name)]; len(got) != 1 || got[0] != value {
			return fmt.Errorf("the app saw %s %q, want the route's %q", name, got, value)
		}
		return nil
	})
}

// metric returns the value of the Prometheus sample whose name and labels
// match (labels as `k="v"` substrings), or -1 when there is none.
func metric(stats, name string, labels ...string) float64 {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(?:\{([^}]*)\})? ([0-9.e+]+)$`)
	for _, m := range re.FindAllStringSubmatch(stats, -1) {
		all := true
		for _, l := range labels {
			all = all && strings.Contains(m[1], l)
		}
		if all {
			v, err := strconv.ParseFloat(m[2], 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// clusterHandshakes sums the TLS handshakes of the clusters whose name
// tag is cluster.
func clusterHandshakes(stats, cluster string) float64 {
	re := regexp.MustCompile(`(?m)^envoy_cluster_\S*ssl_handshake\{(?:[^}]*,)?envoy_cluster_name="` + regexp.QuoteMeta(cluster) + `"[^}]*\} ([0-9.e+]+)$`)
	sum := -1.0
	for _, m := range re.FindAllStringSubmatch(stats, -1) {
		if v, err := strconv.ParseFloat(m[1], 64); err == nil {
			sum = max(sum, 0) + v
		}
	}
	return sum
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// inboundHandshakes is the number of TLS handshakes the sidecar's inbound
// listener (0.0.0.0:15006) completed.
func inboundHandshakes(t *testing.T, p *pod) float64 {
	t.Helper()
	return metric(p.stats(t), "envoy_listener_ssl_handshake", `envoy_listener_address="0.0.0.0_15006"`)
}

// TestStrictMeshedCall: a meshed client calls a meshed server by its
// Service name under STRICT mTLS. The calls succeed, the server app sees
// the client's SPIFFE ID in x-forwarded-client-cert, and the connection
// between the pods is TLS: the server sidecar's inbound listener and the
// client's cluster count TLS handshakes, and what answers on the server
// pod's app port is a TLS server with the server's workload certificate.
func TestStrictMeshedCall(t *testing.T) {
	needRoot(t)
	ns := meshNamespace(t)
	peerAuth(t, ns, "default", meshv1alpha1.PeerMTLSStrict, nil)
	server, svc := echoServer(t, ns, podSpec{})
	client := startPod(t, podSpec{name: "client", namespace: ns})

	url := serviceURL(svc, "/hello")
	// Measured before the first call: the client's sidecar may carry every
	// call on the one mTLS connection that call opens.
	before := inboundHandshakes(t, server)
	first := waitCall(t, client, url)
	const n = 5
	res := calls(t, client.netns, AppConfig{Mode: HTTPClient, URL: url, Count: n, NewConnections: true})
	wantID := "spiffe://cluster.local/ns/" + ns + "/sa/client"
	for _, r := range append(res, first) {
		if !r.OK || r.Report == nil {
			t.Errorf("call %d failed: %+v", r.N, r)
			continue
		}
		if r.Report.Pod != "server" || r.Report.Path != "/hello" {
			t.Errorf("call %d reached %s%s, want server/hello", r.N, r.Report.Pod, r.Report.Path)
		}
		if !strings.Contains(r.Report.XFCC, "URI="+wantID) {
			t.Errorf("call %d: x-forwarded-client-cert %q, want URI=%s", r.N, r.Report.XFCC, wantID)
		}
	}
	if len(res) != n {
		t.Fatalf("%d calls, want %d", len(res), n)
	}
	// The client's sidecar pools its upstream connections, so the calls
	// share the mTLS connections it opened.
	if got := inboundHandshakes(t, server) - before; got < 1 {
		t.Errorf("the server's inbound listener completed %v TLS handshakes during %d calls", got, n+1)
	}
	// The cluster's alt_stat_name has no dots, so that Envoy's tag
	// extraction (which cuts at the first dot) keeps the whole name.
	stats := client.stats(t)
	if got := clusterHandshakes(stats, outboundStatName(ns, "server")); got < 1 {
		t.Errorf("the client's cluster to server completed %v TLS handshakes; its TLS stats:\n%s", got, grepLines(stats, "ssl_handshake"))
	}
	// What answers on the pod's app port is the sidecar, with the server's
	// workload certificate.
	checkPresented(t, server, presentedCert(t, server), op.certs.TrustBundle())
}

// TestGRPCMeshedCall: a gRPC client app calls a gRPC server app by its
// Service name under STRICT; the call goes through both sidecars (HTTP/2
// both ways) and the server sees the client's SPIFFE ID.
func TestGRPCMeshedCall(t *testing.T) {
	needRoot(t)
	ns := meshNamespace(t)
	peerAuth(t, ns, "default", meshv1alpha1.PeerMTLSStrict, nil)
	const port = 9090
	svc := createService(t, ns, "greeter", "greeter", corev1.ServicePort{Name: "grpc", Port: port, TargetPort: intstr.FromInt32(port)})
	server := startPod(t, podSpec{name: "greeter", namespace: ns, app: &AppConfig{Mode: GRPCServer, Port: port},
		ports: []corev1.ContainerPort{{Name: "grpc", ContainerPort: port}}})
	setEndpoints(t, svc, server)
	client := startPod(t, podSpec{name: "caller", namespace: ns})
	target := svc.Name + "." + ns + ":" + strconv.Itoa(port)
	before := inboundHandshakes(t, server)
	var res []CallResult
	envtest.Eventually(t, wait, func() error {
		res = calls(t, client.netns, AppConfig{Mode: GRPCClient, Target: target, Count: 3, Timeout: 3 * time.Second})
		for _, r := range res {
			if !r.OK {
				return fmt.Errorf("call %d: %s", r.N, r.Error)
			}
		}
		return nil
	})
	wantID := "URI=spiffe://cluster.local/ns/" + ns + "/sa/caller"
	for _, r := range res {
		if r.Pod != "greeter" || !strings.Contains(r.XFCC, wantID) {
			t.Errorf("call %d answered by %q with x-forwarded-client-cert %q, want greeter and %s", r.N, r.Pod, r.XFCC, wantID)
		}
	}
	if got := inboundHandshakes(t, server) - before; got < 1 {
		t.Errorf("the server's inbound listener completed %v TLS handshakes", got)
	}
}

// callsFrom makes n calls from p to url, each on a new connection.
func callsFrom(t *testing.T, p *pod, url string, n int) []CallResult {
	t.Helper()
	return calls(t, p.netns, AppConfig{Mode: HTTPClient, URL: url, Count: n, NewConnections: true, Timeout: 3 * time.Second})
}

// allOK fails t unless every call succeeded and reached want.
func allOK(t *testing.T, what string, res []CallResult, n int, want string) {
	t.Helper()
	if len(res) != n {
		t.Errorf("%s: %d calls, want %d", what, len(res), n)
	}
	for _, r := range res {
		if !r.OK || r.Report == nil || r.Report.Pod != want {
			t.Errorf("%s: call %d: %+v, want an answer from %s", what, r.N, r, want)
		}
	}
}

// waitRefused polls until calls from p to url fail (a policy change
// reaching the server's sidecar), then checks that n more fail too.
func waitRefused(t *testing.T, p *pod, url string, n int) {
	t.Helper()
	envtest.Eventually(t, wait, func() error {
		res := callsFrom(t, p, url, 1)
		if len(res) == 1 && !res[0].OK && res[0].Error != "" {
			return nil
		}
		return fmt.Errorf("%s from %s still answered: %+v", url, p.obj.Name, res)
	})
	for _, r := range callsFrom(t, p, url, n) {
		if r.OK || r.Report != nil {
			t.Errorf("call %d from %s to %s was answered: %+v", r.N, p.obj.Name, url, r)
		}
	}
}

// waitAccepted polls until calls from p to url succeed, then checks that
// n more do.
func waitAccepted(t *testing.T, p *pod, url string, n int) []CallResult {
	t.Helper()
	waitCall(t, p, url)
	res := callsFrom(t, p, url, n)
	allOK(t, "calls from "+p.obj.Name, res, n, "server")
	return res
}

// setMode changes a PeerAuthentication's mode.
func setMode(t *testing.T, pa *meshv1alpha1.PeerAuthentication, mode meshv1alpha1.PeerMTLSMode) {
	t.Helper()
	update(t, pa, func() { pa.Spec.MTLS.Mode = mode })
}

// TestUninjectedCaller: a pod without a sidecar (like a Job that opted
// out) calling a meshed server — by its pod IP, as kube-proxy would send a
// ClusterIP call — is refused under STRICT, accepted once the namespace is
// PERMISSIVE, refused again under STRICT, and accepted under a
// workload-scoped PERMISSIVE policy for the server alone, which a meshed
// client's mTLS calls survive throughout. The server app sees no client
// certificate on plaintext calls.
func TestUninjectedCaller(t *testing.T) {
	needRoot(t)
	ns := meshNamespace(t)
	nsPolicy := peerAuth(t, ns, "default", meshv1alpha1.PeerMTLSStrict, nil)
	server, svc := echoServer(t, ns, podSpec{})
	meshed := startPod(t, podSpec{name: "client", namespace: ns})
	job := startPod(t, podSpec{name: "job", namespace: ns, noInject: true})
	direct := "http://" + server.netns.IP.String() + ":" + strconv.Itoa(appPort) + "/job"
	meshedURL := serviceURL(svc, "/meshed")
	const n = 3

	waitCall(t, meshed, meshedURL)
	waitRefused(t, job, direct, n)

	setMode(t, nsPolicy, meshv1alpha1.PeerMTLSPermissive)
	for _, r := range waitAccepted(t, job, direct, n) {
		if r.Report != nil && r.Report.XFCC != "" {
			t.Errorf("a plaintext call carried x-forwarded-client-cert %q", r.Report.XFCC)
		}
	}
	allOK(t, "meshed calls under PERMISSIVE", callsFrom(t, meshed, meshedURL, n), n, "server")

	setMode(t, nsPolicy, meshv1alpha1.PeerMTLSStrict)
	waitRefused(t, job, direct, n)

	peerAuth(t, ns, "server-permissive", meshv1alpha1.PeerMTLSPermissive, map[string]string{"app": "server"})
	waitAccepted(t, job, direct, n)
	allOK(t, "meshed calls under the workload policy", callsFrom(t, meshed, meshedURL, n), n, "server")
}
