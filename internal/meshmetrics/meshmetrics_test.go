package meshmetrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// scrape reads the registry as the manager's metrics endpoint serves it.
func scrape(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// TestXDSObserver: each hook the xDS server calls moves its series on the
// registry the manager serves.
func TestXDSObserver(t *testing.T) {
	o := XDS()
	o.ProxyConnected("Sidecar")
	o.ProxyConnected("Sidecar")
	o.ProxyDisconnected("Sidecar")
	o.ProxyConnected("GRPC")
	o.Pushed("Cluster")
	o.NACKed("Listener")
	o.Converged(120 * time.Millisecond)
	DeclareRefusalReasons([]string{"invalid_token", "pod_mismatch"}, []string{"max_connections"})
	o.StreamRefused("pod_mismatch")
	o.ConnectionRefused("max_connections")
	body := scrape(t)
	for _, want := range []string{
		ConnectedProxies + `{kind="Sidecar"} 1`,
		ConnectedProxies + `{kind="GRPC"} 1`,
		Pushes + `{type="Cluster"} 1`,
		NACKs + `{type="Listener"} 1`,
		NACKs + `{type="Cluster"} 0`,
		Convergence + `_bucket{le="0.25"} 1`,
		Convergence + `_bucket{le="0.1"} 0`,
		AuthFailures + `{reason="pod_mismatch"} 1`,
		AuthFailures + `{reason="invalid_token"} 0`,
		ConnectionsRefused + `{reason="max_connections"} 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestPipelineAndCertificates: translation, generation and certificate
// expiry, and an identity forgotten leaves no series.
func TestPipelineAndCertificates(t *testing.T) {
	ObserveTranslation(3 * time.Millisecond)
	ObserveGeneration(20*time.Millisecond, 7)
	expiry := time.Unix(1_900_000_000, 0)
	SetCertificateExpiry("spiffe://cluster.local/ns/a/sa/web", expiry)
	SetCertificateExpiry("spiffe://cluster.local/ns/a/sa/gone", expiry)
	ForgetCertificate("spiffe://cluster.local/ns/a/sa/gone")
	body := scrape(t)
	for _, want := range []string{
		TranslationDuration + `_count 1`,
		TranslationDuration + `_bucket{le="0.005"} 1`,
		GenerationDuration + `_count 1`,
		ProxiesGenerated + ` 7`,
		CertificateExpiry + `{identity="spiffe://cluster.local/ns/a/sa/web"} 1.9e+09`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(body, "sa/gone") {
		t.Errorf("a forgotten identity still has a series")
	}
}

// TestPodsWithoutSidecar: counts by namespace and state, replaced whole.
func TestPodsWithoutSidecar(t *testing.T) {
	SetPodsWithoutSidecar([]string{"a/x", "a/y", "b/z"}, []string{"b/old"})
	SetPodsWithoutSidecar([]string{"a/x", "a/y"}, []string{"b/old"})
	body := scrape(t)
	for _, want := range []string{
		PodsWithoutSidecar + `{namespace="a",state="uninjected"} 2`,
		PodsWithoutSidecar + `{namespace="b",state="outdated"} 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(body, `namespace="b",state="uninjected"`) {
		t.Errorf("a namespace without uninjected pods any more still has a series")
	}
}
