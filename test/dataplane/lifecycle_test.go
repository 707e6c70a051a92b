package dataplane

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/test/envtest"
	"github.com/capstanmesh/capstan/xds/server"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// stopOperator stops the shared operator for the rest of t; unless t
// starts one itself, the default one is started again when t ends.
func stopOperator(t *testing.T) {
	t.Helper()
	if err := op.stop(); err != nil {
		t.Fatal(err)
	}
	op = nil
	t.Cleanup(func() {
		if op == nil {
			startOperatorFor(t, operatorOptions{})
		}
	})
}

// startOperatorFor starts the operator with opts; when opts are not the
// defaults, the default operator replaces it when t ends.
func startOperatorFor(t *testing.T, opts operatorOptions) {
	t.Helper()
	var err error
	if op, err = startOperator(env, network.Gateway, opts); err != nil {
		t.Fatal(err)
	}
	if opts != (operatorOptions{}) {
		t.Cleanup(func() {
			stopOperator(t)
			startOperatorFor(t, operatorOptions{})
		})
	}
}

// rootCAPublished waits until the operator has put the root CA in ns.
func rootCAPublished(t *testing.T, ns string) {
	t.Helper()
	if _, err := waitConfigMap(context.Background(), ns, meshv1alpha1.RootCAConfigMapName); err != nil {
		t.Fatal(err)
	}
}

// acked waits until the proxy has ACKed the listeners and clusters the
// server publishes for it, and fails t if it NACKed them. It polls: a
// version published after the one the sidecar became ready with (an
// object of the test reaching the operator late) is ACKed a moment later.
func acked(t *testing.T, p *pod) {
	t.Helper()
	envtest.Eventually(t, wait, func() error {
		st, ok := op.server.ProxyStatus(p.nodeID())
		if !ok {
			return fmt.Errorf("the xDS server knows no proxy %s", p.nodeID())
		}
		for _, typ := range []string{resourcev3.ListenerType, resourcev3.ClusterType} {
			ts := st.Types[typ]
			if ts.Nacked {
				t.Fatalf("%s %s: NACKed %+v (acked %q, published %q)", p.obj.Name, typ, ts.LastNack, ts.AckedVersion, st.Published[typ])
			}
			if ts.AckedVersion == "" || ts.AckedVersion != st.Published[typ] {
				return fmt.Errorf("%s %s: acked %q, published %q", p.obj.Name, typ, ts.AckedVersion, st.Published[typ])
			}
		}
		return nil
	})
}

// TestReadiness: a sidecar whose control plane is not there yet runs but
// is not ready — /healthz/ready on 15021 does not answer 200, Envoy's admin
// says it is still initialising; once the operator serves its config and
// the sidecar has ACKed it, /healthz/ready answers 200. The app's readiness
// probe, rewritten by the injector to /app-health/app/readyz on 15021,
// reaches the app under STRICT mTLS.
func TestReadiness(t *testing.T) {
	needRoot(t)
	ns := meshNamespace(t)
	peerAuth(t, ns, "default", meshv1alpha1.PeerMTLSStrict, nil)
	rootCAPublished(t, ns)
	stopOperator(t)

	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromString("http")}}}
	server, _ := echoServer(t, ns, podSpec{readiness: probe, noWait: true})
	envtest.Eventually(t, wait, func() error {
		r := server.admin(t, "/ready")
		if r.Status == 0 {
			return fmt.Errorf("envoy's admin does not answer yet: %s", r.Error)
		}
		if r.Status == http.StatusOK || !strings.Contains(r.Body, "INITIALIZING") {
			return fmt.Errorf("envoy's admin /ready: %d %q, want 503 INITIALIZING", r.Status, r.Body)
		}
		return nil
	})
	if code, body, err := hostGet(server.healthURL("/healthz/ready")); err == nil && code == http.StatusOK {
		t.Errorf("/healthz/ready answered 200 %q without a control plane", body)
	}

	startOperatorFor(t, operatorOptions{})
	server.waitReady(t)
	acked(t, server)

	rewritten := server.obj.Spec.Containers[0].ReadinessProbe.HTTPGet
	if rewritten.Port.IntValue() != meshv1alpha1.PortHealth {
		t.Fatalf("the readiness probe was not rewritten: %+v", rewritten)
	}
	envtest.Eventually(t, wait, func() error {
		code, body, err := hostGet(server.healthURL(rewritten.Path))
		if err != nil || code != http.StatusOK || !strings.Contains(body, `"path":"/ready"`) || !strings.Contains(body, `"pod":"server"`) {
			return fmt.Errorf("%s: %d %q %w, want the app's answer to /ready", rewritten.Path, code, body, err)
		}
		return nil
	})
}

// connected is Envoy's view of its xDS stream (1 connected, 0 not).
func connected(t *testing.T, p *pod) float64 {
	t.Helper()
	return metric(p.stats(t), "envoy_control_plane_connected_state")
}

// TestControlPlaneAway: with the operator gone, the sidecars know it
// (control_plane.connected_state 0) and keep serving meshed calls with
// their last config and certificates; when it is back they reconnect (the
// same Envoy processes), and a route change made after its return reaches
// the traffic.
func TestControlPlaneAway(t *testing.T) {
	needRoot(t)
	ns := meshNamespace(t)
	peerAuth(t, ns, "default", meshv1alpha1.PeerMTLSStrict, nil)
	server, svc := echoServer(t, ns, podSpec{})
	client := startPod(t, podSpec{name: "client", namespace: ns})
	url := serviceURL(svc, "/away")
	waitCall(t, client, url)

	stopOperator(t)
	for _, p := range []*pod{client, server} {
		envtest.Eventually(t, wait, func() error {
			if c := connected(t, p); c != 0 {
				return fmt.Errorf("%s: control_plane.connected_state %v after the operator stopped", p.obj.Name, c)
			}
			return nil
		})
	}
	const n = 5
	allOK(t, "calls without a control plane", callsFrom(t, client, url, n), n, "server")

	startOperatorFor(t, operatorOptions{})
	for _, p := range []*pod{client, server} {
		envtest.Eventually(t, wait, func() error {
			if st, ok := op.server.ProxyStatus(p.nodeID()); !ok || st.Streams == 0 {
				return fmt.Errorf("%s has no stream to the new operator", p.obj.Name)
			}
			if c := connected(t, p); c != 1 {
				return fmt.Errorf("%s: control_plane.connected_state %v", p.obj.Name, c)
			}
			return nil
		})
		if exited, err := p.envoy.Exited(); exited {
			t.Fatalf("envoy of %s exited: %v", p.obj.Name, err)
		}
	}

	route := &meshv1alpha1.MeshRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "server", Namespace: ns},
		Spec: meshv1alpha1.MeshRouteSpec{Hosts: []string{"server"}, HTTP: []meshv1alpha1.HTTPRule{{
			Route:   []meshv1alpha1.Destination{{Host: "server"}},
			Headers: &meshv1alpha1.HeaderEdits{Request: &meshv1alpha1.HeaderOperations{Set: map[string]string{"x-capstan-change": "after-return"}}},
		}}},
	}
	if err := env.Client.Create(context.Background(), route); err != nil {
		t.Fatal(err)
	}
	waitRouteHeader(t, client, url, "x-capstan-change", "after-return")
}

// authFailures reads capstan_xds_auth_failures_total{reason}.
func authFailures(t *testing.T, reason string) float64 {
	t.Helper()
	return counter(t, "capstan_xds_auth_failures_total", "reason", reason)
}

// counter reads a counter of controller-runtime's registry (the operator
// runs in this process); label and value select a series when not empty.
func counter(t *testing.T, name, label, value string) float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if label == "" {
				return m.GetCounter().GetValue()
			}
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestTokenExchange: Envoy's STS call credentials exchange the projected
// token at the operator's /v1/token and authenticate the xDS stream with
// the result (a sidecar gets config, and the exchanges are counted); a pod
// whose sidecar holds another pod's token, of another ServiceAccount, is
// refused on the stream (pod_mismatch) and gets nothing: no listener, not
// ready, nothing ACKed.
func TestTokenExchange(t *testing.T) {
	needRoot(t)
	ns := meshNamespace(t)
	before := counter(t, "capstan_xds_token_exchanges_total", "", "")
	victim, _ := echoServer(t, ns, podSpec{})
	acked(t, victim)
	if got := counter(t, "capstan_xds_token_exchanges_total", "", ""); got <= before {
		t.Errorf("token exchanges %v → %v: the sidecar got config without exchanging its token?", before, got)
	}

	refused := authFailures(t, server.ReasonPodMismatch)
	thief := startPod(t, podSpec{name: "thief", namespace: ns, tokenOf: victim, noWait: true})
	envtest.Eventually(t, wait, func() error {
		if got := authFailures(t, server.ReasonPodMismatch); got <= refused {
			return fmt.Errorf("pod_mismatch refusals still %v", got)
		}
		return nil
	})
	if st, ok := op.server.ProxyStatus(thief.nodeID()); ok && (st.Streams > 0 || len(st.Types) > 0) {
		t.Errorf("the thief's node has streams or exchanges: %+v", st)
	}
	if code, body, err := hostGet(thief.healthURL("/healthz/ready")); err == nil {
		t.Errorf("the thief's sidecar serves /healthz/ready: %d %q", code, body)
	}
	if r := thief.admin(t, "/ready"); r.Status == http.StatusOK {
		t.Errorf("the thief's Envoy is ready: %q", r.Body)
	}
	if r := thief.admin(t, "/listeners"); strings.TrimSpace(r.Body) != "" {
		t.Errorf("the thief's Envoy has listeners: %q", r.Body)
	}
}
