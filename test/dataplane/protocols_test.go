package dataplane

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/test/envtest"
)

// appProtocolPort is a Service port whose name says nothing of its
// protocol (or says the wrong thing): only appProtocol does.
func appProtocolPort(name string, port int32, appProtocol string) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: port, TargetPort: intstr.FromInt32(port), AppProtocol: ptr.To(appProtocol)}
}

// protocolServer starts a meshed pod running app on port behind a Service
// of the same name with the given port.
func protocolServer(t *testing.T, ns, name string, app AppConfig, sp corev1.ServicePort) (*pod, *corev1.Service) {
	t.Helper()
	svc := createService(t, ns, name, name, sp)
	app.Port = int(sp.TargetPort.IntVal)
	server := startPod(t, podSpec{name: name, namespace: ns, app: &app,
		ports: []corev1.ContainerPort{{Name: sp.Name, ContainerPort: sp.TargetPort.IntVal}}})
	setEndpoints(t, svc, server)
	return server, svc
}

// TestAppProtocol: the Service port's appProtocol decides how the sidecars
// carry it, under STRICT mTLS.
//   - grpc on a port named "api" (TCP by its name): the gRPC app's calls
//     are routed as HTTP/2 by both sidecars — the server app sees the
//     caller's SPIFFE ID in x-forwarded-client-cert, which only an HTTP
//     connection manager adds;
//   - h2c on a port named "web": an HTTP/1.1 client's requests reach an app
//     that speaks HTTP/2 without TLS and nothing else, as HTTP/2;
//   - tcp on a port named "http-lines" (HTTP by its name): a line protocol
//     passes through the sidecars' TCP proxies inside mTLS, on one
//     connection and on new ones.
func TestAppProtocol(t *testing.T) {
	needRoot(t)
	ns := meshNamespace(t)
	peerAuth(t, ns, "default", meshv1alpha1.PeerMTLSStrict, nil)
	client := startPod(t, podSpec{name: "client", namespace: ns})
	wantID := "URI=spiffe://cluster.local/ns/" + ns + "/sa/client"

	t.Run("grpc", func(t *testing.T) {
		_, svc := protocolServer(t, ns, "greeter", AppConfig{Mode: GRPCServer}, appProtocolPort("api", 9090, "grpc"))
		target := svc.Name + "." + ns + ":9090"
		var res []CallResult
		envtest.Eventually(t, wait, func() error {
			res = calls(t, client.netns, AppConfig{Mode: GRPCClient, Target: target, Count: 3, Timeout: 3 * time.Second})
			return firstFailure(res, 3)
		})
		for _, r := range res {
			if r.Pod != "greeter" || !strings.Contains(r.XFCC, wantID) {
				t.Errorf("call %d answered by %q with x-forwarded-client-cert %q, want greeter and %s", r.N, r.Pod, r.XFCC, wantID)
			}
		}
	})
	t.Run("h2c", func(t *testing.T) {
		_, svc := protocolServer(t, ns, "web", AppConfig{Mode: HTTPServer, ServerOptions: ServerOptions{H2COnly: true}}, appProtocolPort("web", 8081, "h2c"))
		url := "http://" + svc.Name + "." + ns + ":8081/h2c"
		waitCall(t, client, url)
		res := callsFrom(t, client, url, 3)
		allOK(t, "h2c calls", res, 3, "web")
		for _, r := range res {
			if r.Report != nil && (r.Report.Proto != "HTTP/2.0" || !strings.Contains(r.Report.XFCC, wantID)) {
				t.Errorf("call %d reached the app as %s with x-forwarded-client-cert %q, want HTTP/2.0 and %s", r.N, r.Report.Proto, r.Report.XFCC, wantID)
			}
		}
	})
	t.Run("tcp", func(t *testing.T) {
		server, svc := protocolServer(t, ns, "lines", AppConfig{Mode: TCPServer}, appProtocolPort("http-lines", 7000, "tcp"))
		target := svc.Name + "." + ns + ":7000"
		const n = 5
		// Until the client's sidecar holds the final cluster (its
		// endpoint's mTLS mark arrives with the pod's status), a cluster
		// update can reset an open TCP connection: wait for a whole
		// sequence on one connection that the server's sidecar took over
		// mTLS.
		envtest.Eventually(t, wait, func() error {
			before := inboundHandshakes(t, server)
			if err := firstFailure(calls(t, client.netns, AppConfig{Mode: TCPClient, Target: target, Count: n, Timeout: 3 * time.Second}), n); err != nil {
				return err
			}
			if inboundHandshakes(t, server) == before {
				return fmt.Errorf("the connection to %s was not mTLS yet", target)
			}
			return nil
		})
		// The connections went to the port's mTLS chain (under STRICT a
		// plaintext one would fail), none through the inbound passthrough.
		// The listener's handshake count is not used: under load it was
		// seen one short of the connections made.
		plainBefore, mtlsBefore := inboundPassthrough(t, server), inboundMTLS(t, server, 7000)
		for _, fresh := range []bool{false, true} {
			res := calls(t, client.netns, AppConfig{Mode: TCPClient, Target: target, Count: n, NewConnections: fresh, Timeout: 3 * time.Second})
			if err := firstFailure(res, n); err != nil {
				t.Errorf("lines (new connections %v): %v", fresh, err)
			}
			for _, r := range res {
				if want := "lines hello " + strconv.Itoa(r.N); r.Body != want {
					t.Errorf("line %d answered %q, want %q", r.N, r.Body, want)
				}
			}
		}
		plain, mtls := inboundPassthrough(t, server)-plainBefore, inboundMTLS(t, server, 7000)-mtlsBefore
		if plainBefore < 0 || plain != 0 || mtls < 1 {
			t.Errorf("the server's sidecar took %v connections in passthrough and %v over mTLS on port 7000 (passthrough before: %v), want none and some\n%s",
				plain, mtls, plainBefore, grepLines(server.stats(t), "envoy_tcp_downstream_cx_total"))
		}
	})
}

// inboundMTLS is p's count of inbound mTLS connections to a TCP port, -1
// without the stat.
func inboundMTLS(t *testing.T, p *pod, port int) float64 {
	t.Helper()
	return metric(p.stats(t), "envoy_tcp_downstream_cx_total", `connection_security="mtls"`,
		`envoy_tcp_prefix="inbound_`+strconv.Itoa(port)+`_mtls"`)
}

// inboundPassthrough is p's count of inbound connections that matched no
// port's chain, -1 without the stat.
func inboundPassthrough(t *testing.T, p *pod) float64 {
	t.Helper()
	return metric(p.stats(t), "envoy_tcp_downstream_cx_total", `envoy_tcp_prefix="InboundPassthroughCluster"`)
}

// firstFailure describes the first failed call, or a count other than n.
func firstFailure(res []CallResult, n int) error {
	if len(res) != n {
		return fmt.Errorf("%d calls, want %d: %+v", len(res), n, res)
	}
	for _, r := range res {
		if !r.OK {
			return fmt.Errorf("call %d: %+v", r.N, r)
		}
	}
	return nil
}

// inboundStat is a counter of p's inbound cluster of the app port.
func inboundStat(t *testing.T, p *pod, name string) float64 {
	t.Helper()
	return metric(p.stats(t), "envoy_cluster_"+name, `envoy_cluster_name="inbound|`+strconv.Itoa(appPort)+`||"`)
}

// TestIdleCloseRace: an app that drops a keep-alive connection when the
// next request arrives after 200ms idle — the race of a keep-alive timeout
// expiring as the request goes out. Every GET through two sidecars
// succeeds: the server's sidecar saw its connection reset after sending the
// request and retried the idempotent request on a new connection (counted
// as retries of its inbound cluster). A POST is not retried: the race
// surfaces as a 503 from the server's sidecar and the retry count stays.
// And with an app keeping idle connections for 5s (Node.js's default), the
// server's sidecar closes them first, after its 4s idle timeout. An app
// without a sidecar behind the Service: the client's sidecar retries the
// dropped GETs itself.
func TestIdleCloseRace(t *testing.T) {
	needRoot(t)
	t.Run("retries", func(t *testing.T) {
		server, svc, client := idleClosingServer(t, 200*time.Millisecond)
		const n = 8
		res := calls(t, client.netns, AppConfig{Mode: HTTPClient, URL: serviceURL(svc, "/get"), Count: n, Interval: 400 * time.Millisecond})
		allOK(t, "GETs", res, n, "server")
		retried := inboundStat(t, server, "upstream_rq_retry")
		if retried < 1 {
			t.Errorf("the server's sidecar retried %v requests to the app, want the dropped GETs retried", retried)
		}
		res = calls(t, client.netns, AppConfig{Mode: HTTPClient, URL: serviceURL(svc, "/post"), Count: n, Interval: 400 * time.Millisecond, Method: http.MethodPost})
		var lost int
		for _, r := range res {
			if r.Status == http.StatusServiceUnavailable && r.Report == nil {
				lost++
			} else if !r.OK {
				t.Errorf("POST %d: %+v, want 200 or the sidecar's 503", r.N, r)
			}
		}
		if lost == 0 {
			t.Errorf("no POST met a dropped connection: %+v", res)
		}
		if got := inboundStat(t, server, "upstream_rq_retry"); got != retried {
			t.Errorf("the server's sidecar retried %v POSTs, want none", got-retried)
		}
		t.Logf("%d GETs: %v retried by the server's sidecar; %d POSTs: %d lost to the race", n, retried, n, lost)
	})
	t.Run("uninjected", func(t *testing.T) {
		ns := meshNamespace(t)
		svc := createService(t, ns, "server", "server", httpPort(80, appPort))
		server := startPod(t, podSpec{
			name: "server", namespace: ns, noInject: true, ports: []corev1.ContainerPort{{Name: "http", ContainerPort: appPort}},
			app: &AppConfig{Mode: HTTPServer, Port: appPort, ServerOptions: ServerOptions{IdleClose: 200 * time.Millisecond}},
		})
		setEndpoints(t, svc, server)
		client := startPod(t, podSpec{name: "client", namespace: ns})
		waitCall(t, client, serviceURL(svc, "/ready"))
		const n = 8
		before := clusterStat(client.stats(t), ns, svc.Name, "upstream_rq_retry")
		res := calls(t, client.netns, AppConfig{Mode: HTTPClient, URL: serviceURL(svc, "/get"), Count: n, Interval: 400 * time.Millisecond})
		allOK(t, "GETs to an app without a sidecar", res, n, "server")
		if got := clusterStat(client.stats(t), ns, svc.Name, "upstream_rq_retry") - before; got < 1 {
			t.Errorf("the client's sidecar retried %v requests, want the dropped GETs retried", got)
		}
	})
	t.Run("idle-timeout", func(t *testing.T) {
		server, svc, client := idleClosingServer(t, 5*time.Second)
		const n = 3
		res := calls(t, client.netns, AppConfig{Mode: HTTPClient, URL: serviceURL(svc, "/get"), Count: n, Interval: 4500 * time.Millisecond, Method: http.MethodPost})
		allOK(t, "POSTs 4.5s apart", res, n, "server")
		if got := inboundStat(t, server, "upstream_cx_idle_timeout"); got < n-1 {
			t.Errorf("the server's sidecar closed %v idle connections to the app, want ≥ %d", got, n-1)
		}
		if got := inboundStat(t, server, "upstream_rq_retry"); got != 0 {
			t.Errorf("the server's sidecar retried %v requests, want none", got)
		}
	})
}

// idleClosingServer starts, in a new namespace, the HTTP app with IdleClose
// behind the Service server and a meshed client that reaches it.
func idleClosingServer(t *testing.T, idleClose time.Duration) (*pod, *corev1.Service, *pod) {
	t.Helper()
	ns := meshNamespace(t)
	server, svc := echoServer(t, ns, podSpec{app: &AppConfig{ServerOptions: ServerOptions{IdleClose: idleClose}}})
	client := startPod(t, podSpec{name: "client", namespace: ns})
	waitCall(t, client, serviceURL(svc, "/ready"))
	return server, svc, client
}

// TestWebSocket: under STRICT, a WebSocket upgrade through both sidecars
// gets the app's 101, and the upgraded connection then carries the app's
// line protocol both ways, on one connection and on new ones.
func TestWebSocket(t *testing.T) {
	needRoot(t)
	ns := meshNamespace(t)
	peerAuth(t, ns, "default", meshv1alpha1.PeerMTLSStrict, nil)
	_, svc := echoServer(t, ns, podSpec{})
	client := startPod(t, podSpec{name: "client", namespace: ns})
	waitCall(t, client, serviceURL(svc, "/ready"))
	cfg := AppConfig{Mode: WSClient, URL: serviceURL(svc, WebSocketPath), Target: svc.Name + "." + ns + ":80", Timeout: 3 * time.Second}
	const n = 5
	for _, fresh := range []bool{false, true} {
		cfg.Count, cfg.NewConnections = n, fresh
		res := calls(t, client.netns, cfg)
		if err := firstFailure(res, n); err != nil {
			t.Errorf("websocket lines (new connections %v): %v", fresh, err)
		}
		for _, r := range res {
			if want := "server hello " + strconv.Itoa(r.N); r.Body != want {
				t.Errorf("line %d answered %q, want %q", r.N, r.Body, want)
			}
		}
	}
}
