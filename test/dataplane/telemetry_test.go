package dataplane

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	collectortracev1 "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/internal/meshmetrics"
	"github.com/capstanmesh/capstan/test/envtest"
	"github.com/capstanmesh/capstan/webhook/handler"
)

// otlpCollector is a real OTLP/gRPC trace receiver: go.opentelemetry.io's
// TraceService, keeping every span it is sent.
type otlpCollector struct {
	collectortracev1.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []*tracev1.Span
}

// Export keeps the request's spans.
func (c *otlpCollector) Export(_ context.Context, req *collectortracev1.ExportTraceServiceRequest) (*collectortracev1.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			c.spans = append(c.spans, ss.GetSpans()...)
		}
	}
	return &collectortracev1.ExportTraceServiceResponse{}, nil
}

// trace returns the spans received of one trace, by hex span id.
func (c *otlpCollector) trace(traceID string) map[string]*tracev1.Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]*tracev1.Span{}
	for _, s := range c.spans {
		if hex.EncodeToString(s.GetTraceId()) == traceID {
			out[hex.EncodeToString(s.GetSpanId())] = s
		}
	}
	return out
}

// startCollector serves an OTLP collector on the bridge's host address,
// where the sidecars reach it, and returns it with its host:port.
func startCollector(t *testing.T) (*otlpCollector, string) {
	t.Helper()
	lis, err := net.Listen("tcp", net.JoinHostPort(network.Gateway.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	c := &otlpCollector{}
	srv := grpc.NewServer()
	collectortracev1.RegisterTraceServiceServer(srv, c)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return c, lis.Addr().String()
}

// sample sums the samples of metric name whose labels include every pair of want.
func sample(stats, name string, want map[string]string) float64 {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(?:\{([^}]*)\})? ([0-9.e+]+)$`)
	label := regexp.MustCompile(`([a-z_]+)="([^"]*)"`)
	sum := 0.0
	for _, m := range re.FindAllStringSubmatch(stats, -1) {
		have := map[string]string{}
		for _, l := range label.FindAllStringSubmatch(m[1], -1) {
			have[l[1]] = l[2]
		}
		all := true
		for k, v := range want {
			all = all && have[k] == v
		}
		if v, err := strconv.ParseFloat(m[2], 64); all && err == nil {
			sum += v
		}
	}
	return sum
}

// TestTelemetry: with the Mesh's JSON access logs on and tracing at 100%
// to an OTLP collector, real sidecars produce the golden metrics with
// their labels (source workload, destination service, subset, route,
// response-code class, mTLS), a JSON access log line with the response
// flags of a 503 (no healthy upstream), W3C trace context down to the app
// with spans at the collector whose parent ids match, request ids kept
// end to end, and B3 headers passed through.
func TestTelemetry(t *testing.T) {
	needRoot(t)
	col, addr := startCollector(t)
	setMesh(t, meshv1alpha1.MeshSpec{Telemetry: meshv1alpha1.Telemetry{
		AccessLog: meshv1alpha1.AccessLog{Enabled: true, Format: meshv1alpha1.AccessLogJSON},
		Tracing:   meshv1alpha1.Tracing{SamplingPercent: 100, Collector: addr},
	}})
	ns := meshNamespace(t)
	svc := createService(t, ns, "server", "server", httpPort(scopedPort, scopedPort))
	v1, v2 := versionedServer(t, ns, "v1"), versionedServer(t, ns, "v2")
	setEndpoints(t, svc, v1, v2)
	routeToSubset(t, ns, "v2")
	empty := createService(t, ns, "empty", "nobody", httpPort(80, appPort))
	client := startPod(t, podSpec{name: "client", namespace: ns})
	url := serviceURL(svc, "/telemetry")
	awaitSubsetRoute(t, client, url, ns, "v2")
	envtest.Eventually(t, wait, func() error {
		res := callsFrom(t, client, url, 1)
		if len(res) != 1 || res[0].Report == nil || res[0].Report.Pod != "server-v2" || res[0].Report.Headers["Traceparent"] == nil {
			return fmt.Errorf("call: %+v, want server-v2 with a traceparent", res)
		}
		return nil
	})
	t.Run("golden metrics", func(t *testing.T) { checkGoldenMetrics(t, client, v2, url) })
	t.Run("access log", func(t *testing.T) { checkAccessLog(t, client, serviceURL(empty, "/nothing")) })
	t.Run("trace", func(t *testing.T) { checkTrace(t, col, client, url) })
	t.Run("request id and B3", func(t *testing.T) { checkPassedHeaders(t, client, url) })
	t.Run("control plane metrics", func(t *testing.T) { checkControlPlaneMetrics(t, client) })
	t.Run("names the dashboards and alerts use", func(t *testing.T) { checkExportedNames(t, client, v2) })
}

// checkExportedNames: every metric name config/prometheus and
// config/grafana may use (meshmetrics, checked there by
// test/observability) is one that the real sidecars and manager export.
func checkExportedNames(t *testing.T, client, server *pod) {
	sidecars := client.stats(t) + server.stats(t)
	for _, name := range meshmetrics.SidecarMetrics {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `[{ ]`).MatchString(sidecars) {
			t.Errorf("the sidecars export no %s", name)
		}
	}
	_, manager, err := hostGet(op.metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	// The harness's operator runs no un-injected pods reporter
	// (controllers/uninjected); internal/meshmetrics tests that series.
	skip := map[string]bool{meshmetrics.PodsWithoutSidecar: true}
	for _, name := range meshmetrics.ManagerMetrics {
		if !skip[name] && !regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(name)+`[{ ]`).MatchString(manager) {
			t.Errorf("the manager exports no %s", name)
		}
	}
}

// checkControlPlaneMetrics reads the manager's metrics endpoint: the
// pipeline's translations and generations were timed, the client's
// workload certificate expiry is a plausible time, and the injections
// of this test's pods were counted.
func checkControlPlaneMetrics(t *testing.T, client *pod) {
	code, body, err := hostGet(op.metricsURL)
	if err != nil || code != 200 {
		t.Fatalf("GET %s: %d %v", op.metricsURL, code, err)
	}
	for _, name := range []string{meshmetrics.TranslationDuration + "_count", meshmetrics.GenerationDuration + "_count", meshmetrics.ProxiesGenerated} {
		if got := sample(body, name, nil); got < 1 {
			t.Errorf("%s = %v, want ≥ 1", name, got)
		}
	}
	identity := "spiffe://cluster.local/ns/" + client.obj.Namespace + "/sa/client"
	expiry := sample(body, meshmetrics.CertificateExpiry, map[string]string{"identity": identity})
	if now := float64(time.Now().Unix()); expiry <= now || expiry > now+25*3600 {
		t.Errorf("%s{identity=%q} = %v, want within the next 25h (now %v):\n%s", meshmetrics.CertificateExpiry, identity, expiry, now, grepLines(body, meshmetrics.CertificateExpiry))
	}
	if got := sample(body, handler.InjectionDurationMetric+"_count", map[string]string{"outcome": handler.OutcomeInjected}); got < 3 {
		t.Errorf("injected pods counted: %v, want ≥ 3 (this test's)", got)
	}
}

// checkGoldenMetrics sends n calls and reads the counters they moved, each
// by exactly n (no failure, so no retry), and the latency histograms.
func checkGoldenMetrics(t *testing.T, client, server *pod, url string) {
	ns := client.obj.Namespace
	out := map[string]string{
		"workload": "client", "workload_namespace": ns, "destination_service_name": "server",
		"destination_service_namespace": ns, "destination_subset": "v2", "destination_port": strconv.Itoa(scopedPort),
		"envoy_response_code_class": "2",
	}
	route := map[string]string{"workload": "client", "route": ns + "/server/0", "envoy_response_code_class": "2"}
	in := map[string]string{"workload": "server", "workload_namespace": ns, "connection_security": "mtls", "envoy_response_code_class": "2"}
	read := func() [3]float64 {
		cs, ss := client.stats(t), server.stats(t)
		return [3]float64{sample(cs, "envoy_cluster_upstream_rq_xx", out), sample(cs, "envoy_vhost_upstream_rq_xx", route), sample(ss, "envoy_http_downstream_rq_xx", in)}
	}
	before := read()
	const n = 20
	allOK(t, "calls through the route", callsFrom(t, client, url, n), n, "server-v2")
	after := read()
	for i, what := range []string{"outbound cluster 2xx (source workload, destination service, subset, port)", "route 2xx", "inbound 2xx over mTLS"} {
		if got := after[i] - before[i]; got != n {
			t.Errorf("%s: +%v over %d calls, want +%d (before %v)", what, got, n, n, before[i])
		}
	}
	// Histograms reach /stats/prometheus at Envoy's stats flush (5s).
	envtest.Eventually(t, wait, func() error {
		cs := client.stats(t)
		delete(out, "envoy_response_code_class")
		if got := sample(cs, "envoy_cluster_upstream_rq_time_count", out); got < n {
			return fmt.Errorf("latency histogram of the destination: %v samples, want ≥ %d:\n%s", got, n, grepLines(cs, "upstream_rq_time_count"))
		}
		return nil
	})
}

// checkAccessLog calls a Service without endpoints: the client's sidecar
// answers 503 and logs a JSON line with the response flag UH.
func checkAccessLog(t *testing.T, client *pod, url string) {
	res := calls(t, client.netns, AppConfig{Mode: HTTPClient, URL: url, Count: 1, Headers: map[string]string{"X-Request-Id": "telemetry-503"}})
	if len(res) != 1 || res[0].Status != 503 {
		t.Fatalf("call to a Service without endpoints: %+v, want 503", res)
	}
	envtest.Eventually(t, wait, func() error {
		for _, line := range strings.Split(client.envoy.Output(), "\n") {
			var entry map[string]any
			if json.Unmarshal([]byte(line), &entry) != nil || entry["request_id"] != "telemetry-503" {
				continue
			}
			if entry["response_code"] != 503.0 || entry["response_flags"] != "UH" {
				return fmt.Errorf("access log line %s, want response_code 503 and response_flags UH", line)
			}
			return nil
		}
		return fmt.Errorf("no access log line with request_id telemetry-503 in the client's sidecar output")
	})
}

// checkTrace: the app gets a traceparent whose parent is the server
// sidecar's span, whose parent is the client sidecar's span; both spans
// reach the collector.
func checkTrace(t *testing.T, col *otlpCollector, client *pod, url string) {
	res := callsFrom(t, client, url, 1)
	if len(res) != 1 || res[0].Report == nil || len(res[0].Report.Headers["Traceparent"]) != 1 {
		t.Fatalf("call: %+v, want one traceparent at the app", res)
	}
	tp := strings.Split(res[0].Report.Headers["Traceparent"][0], "-")
	if len(tp) != 4 || tp[0] != "00" || len(tp[1]) != 32 || len(tp[2]) != 16 || tp[3] != "01" {
		t.Fatalf("traceparent %q, want 00-<trace>-<span>-01 (sampled)", res[0].Report.Headers["Traceparent"][0])
	}
	traceID, parent := tp[1], tp[2]
	envtest.Eventually(t, wait, func() error {
		spans := col.trace(traceID)
		server, ok := spans[parent]
		if !ok {
			return fmt.Errorf("trace %s: %d spans, none is the app's parent %s", traceID, len(spans), parent)
		}
		clientSpan, ok := spans[hex.EncodeToString(server.GetParentSpanId())]
		if !ok {
			return fmt.Errorf("trace %s: the server sidecar's span %s has parent %x, which the collector did not get", traceID, parent, server.GetParentSpanId())
		}
		if len(clientSpan.GetParentSpanId()) != 0 {
			return fmt.Errorf("the client sidecar's span has a parent %x; the app sent no trace context", clientSpan.GetParentSpanId())
		}
		if clientSpan.GetKind() != tracev1.Span_SPAN_KIND_CLIENT || server.GetKind() != tracev1.Span_SPAN_KIND_SERVER {
			return fmt.Errorf("span kinds client %v, server %v", clientSpan.GetKind(), server.GetKind())
		}
		return nil
	})
}

// checkPassedHeaders: an x-request-id from the app reaches the server app
// unchanged, one is generated when the app sends none, and B3 headers pass
// through untouched.
func checkPassedHeaders(t *testing.T, client *pod, url string) {
	b3 := map[string]string{"X-Request-Id": "telemetry-id-1", "X-B3-Traceid": "463ac35c9f6413ad48485a3953bb6124", "X-B3-Spanid": "a2fb4a1d1a96d312", "X-B3-Sampled": "1"}
	res := calls(t, client.netns, AppConfig{Mode: HTTPClient, URL: url, Count: 1, Headers: b3})
	if len(res) != 1 || res[0].Report == nil {
		t.Fatalf("call: %+v", res)
	}
	for k, v := range b3 {
		if got := res[0].Report.Headers[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s at the server app: %q, want %q", k, got, v)
		}
	}
	res = callsFrom(t, client, url, 1)
	if len(res) != 1 || res[0].Report == nil || len(res[0].Report.Headers["X-Request-Id"]) != 1 || res[0].Report.Headers["X-Request-Id"][0] == "" {
		t.Errorf("a call without x-request-id: %+v, want one generated", res)
	}
}
