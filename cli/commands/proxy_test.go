package commands

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/webhook/inject"
	"github.com/capstanmesh/capstan/xds/debugapi"
)

var nackAt = time.Date(2026, 12, 3, 9, 30, 0, 0, time.UTC)

// proxyStatusResult: web in sync, cart rejecting its clusters, a proxyless
// client that never asked for secrets, and a disconnected sidecar.
var proxyStatusResult = &ProxyStatusResult{Proxies: []debugapi.Proxy{
	{Node: "grpc~10.0.0.5~api-0.shop~shop.svc.cluster.local", Kind: "grpc", Namespace: "shop", Pod: "api-0", Streams: 1,
		Types: []debugapi.TypeState{
			synced(debugapi.TypeListeners, "5e1d0c2a9b7f"), synced(debugapi.TypeRoutes, "77aa01bc2d3e"),
			synced(debugapi.TypeClusters, "9f8e7d6c5b4a"), synced(debugapi.TypeEndpoints, "0a1b2c3d4e5f"),
			{Type: debugapi.TypeSecrets, TypeURL: "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret", State: debugapi.StateNotSent, Served: "e3b0c44298fc"},
		}},
	{Node: "sidecar~10.0.0.9~cart-0.shop~shop.svc.cluster.local", Kind: "sidecar", Namespace: "shop", Pod: "cart-0", Streams: 1, Version: "v0.1.0",
		Types: []debugapi.TypeState{
			synced(debugapi.TypeListeners, "5e1d0c2a9b7f"), synced(debugapi.TypeRoutes, "77aa01bc2d3e"),
			{Type: debugapi.TypeClusters, TypeURL: "type.googleapis.com/envoy.config.cluster.v3.Cluster", State: debugapi.StateNack,
				Served: "c0ffee123456", Sent: "c0ffee123456", Acked: "9f8e7d6c5b4a",
				LastNack: &debugapi.Nack{Version: "c0ffee123456", At: nackAt,
					Message: "Proto constraint validation failed (ClusterValidationError.OutlierDetection): value must be inside range [0, 100]"}},
			synced(debugapi.TypeEndpoints, "0a1b2c3d4e5f"), synced(debugapi.TypeSecrets, "1234abcd5678"),
		}},
	{Node: "sidecar~10.0.0.7~web-0.shop~shop.svc.cluster.local", Kind: "sidecar", Namespace: "shop", Pod: "web-0", Streams: 0, Version: "v0.1.0",
		Types: []debugapi.TypeState{
			{Type: debugapi.TypeListeners, TypeURL: "type.googleapis.com/envoy.config.listener.v3.Listener", State: debugapi.StateStale,
				Served: "aaaa0000bbbb", Sent: "5e1d0c2a9b7f", Acked: "5e1d0c2a9b7f"},
		}},
}}

func synced(typ, version string) debugapi.TypeState {
	return debugapi.TypeState{Type: typ, TypeURL: "type.googleapis.com/" + typ, State: debugapi.StateSynced, Served: version, Sent: version, Acked: version}
}

var proxyConfigListeners = &ProxyConfigResult{Namespace: "shop", Pod: "web-0", Config: debugapi.Config{
	Node: "sidecar~10.0.0.7~web-0.shop~shop.svc.cluster.local", Type: debugapi.TypeListeners, Version: "5e1d0c2a9b7f00",
	Columns: []string{"ADDRESS", "FILTER CHAINS"},
	Resources: []debugapi.Resource{
		{Name: "inbound_0.0.0.0_15006", Version: "11aa22bb33cc", Summary: []string{"0.0.0.0:15006", "2"},
			Config: json.RawMessage(`{"@type":"type.googleapis.com/envoy.config.listener.v3.Listener","address":{"socket_address":{"address":"0.0.0.0","port_value":15006}},"name":"inbound_0.0.0.0_15006"}`)},
		{Name: "outbound_0.0.0.0_15001", Version: "44dd55ee66ff", Summary: []string{"0.0.0.0:15001", "3"},
			Config: json.RawMessage(`{"@type":"type.googleapis.com/envoy.config.listener.v3.Listener","address":{"socket_address":{"address":"0.0.0.0","port_value":15001}},"name":"outbound_0.0.0.0_15001"}`)},
	},
}}

var proxyConfigSecrets = &ProxyConfigResult{Namespace: "shop", Pod: "web-0", Config: debugapi.Config{
	Node: "sidecar~10.0.0.7~web-0.shop~shop.svc.cluster.local", Type: debugapi.TypeSecrets, Version: "1234abcd5678",
	Columns: []string{"KIND", "SUBJECT", "NOT AFTER"},
	Resources: []debugapi.Resource{
		{Name: "ROOTCA", Version: "99887766aabb", Summary: []string{"trusted CA", "O=capstan", "2036-12-01T00:00:00Z"},
			Config: json.RawMessage(`{"@type":"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret","name":"ROOTCA","validation_context":{"trusted_ca":{"inline_bytes":"LS0tLS1CRUdJTi..."}}}`)},
		{Name: "default", Version: "ffeeddccbbaa", Summary: []string{"certificate", "spiffe://cluster.local/ns/shop/sa/web", "2026-12-04T09:00:00Z"},
			Config: json.RawMessage(`{"@type":"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret","name":"default","tls_certificate":{"certificate_chain":{"inline_bytes":"LS0tLS1CRUdJTi..."}}}`)},
	},
}}

// injectedPod is a pod as the injector writes it, with the status the
// kubelet reports.
func injectedPod(t *testing.T) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "shop"},
		Spec:       corev1.PodSpec{ServiceAccountName: "web", Containers: []corev1.Container{{Name: "app", Image: "web:1"}}},
	}
	cfg := inject.ConfigFromMesh(&meshv1alpha1.Mesh{}, inject.Options{OperatorNamespace: "capstan-system", Version: "v0.0.0-test"})
	out, err := inject.Inject(pod, cfg)
	if err != nil {
		t.Fatal(err)
	}
	out.Status.PodIP = "10.0.0.7"
	return out
}

func bootstrapResult(t *testing.T) *BootstrapResult {
	t.Helper()
	b, err := podBootstrap(injectedPod(t))
	if err != nil {
		t.Fatal(err)
	}
	return &BootstrapResult{Namespace: "shop", Pod: "web-0", Bootstrap: b}
}

func TestPodBootstrapExpandsThePodsFields(t *testing.T) {
	res := bootstrapResult(t)
	var b struct {
		Node struct {
			ID       string            `json:"id"`
			Cluster  string            `json:"cluster"`
			Metadata map[string]string `json:"metadata"`
		} `json:"node"`
	}
	if err := json.Unmarshal(res.Bootstrap, &b); err != nil {
		t.Fatal(err)
	}
	if want := "sidecar~10.0.0.7~web-0.shop~shop.svc.cluster.local"; b.Node.ID != want || b.Node.Cluster != "web.shop" {
		t.Errorf("node %q cluster %q, want %q and web.shop", b.Node.ID, b.Node.Cluster, want)
	}
	// The roots' fingerprints come from a ConfigMap when the proxy starts.
	if got := b.Node.Metadata[inject.NodeMetaRoots]; got != "$("+inject.EnvRootFingerprints+")" {
		t.Errorf("roots metadata %q, want the reference kept", got)
	}
	if _, err := podBootstrap(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "plain", Namespace: "shop"}}); err == nil ||
		!strings.Contains(err.Error(), "not injected") {
		t.Errorf("un-injected pod: %v", err)
	}
}

func TestExpandRefs(t *testing.T) {
	vars := map[string]string{"A": "x", "B": "y"}
	for in, want := range map[string]string{
		"$(A)-$(B)": "x-y", "$$(A)": "$(A)", "$(C)": "$(C)", "a$": "a$", "$(A": "$(A", "$$$(A)": "$x", "": "",
	} {
		if got := expandRefs(in, vars); got != want {
			t.Errorf("expandRefs(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestProxyConfigRefusesUnknownTypes(t *testing.T) {
	_, errOut, code := run(t, "proxy-config", "web-0", "stats")
	if code != 1 || !strings.Contains(errOut, `unknown type "stats"`) || !strings.Contains(errOut, "bootstrap") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}
