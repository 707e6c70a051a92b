package dataplane

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/test/envtest"
)

// httpServerPod starts a meshed pod running the HTTP app on appPort,
// labelled app=server.
func httpServerPod(t *testing.T, ns, name string) *pod {
	t.Helper()
	return startPod(t, podSpec{
		name: name, namespace: ns, labels: map[string]string{"app": "server"},
		app:   &AppConfig{Mode: HTTPServer, Port: appPort},
		ports: []corev1.ContainerPort{{Name: "http", ContainerPort: appPort}},
	})
}

// inboundRequests is how many requests p's sidecar sent to its app.
func inboundRequests(t *testing.T, p *pod) float64 {
	t.Helper()
	return metric(p.stats(t), "envoy_cluster_upstream_rq_total", `envoy_cluster_name="inbound|8080||"`)
}

// TestDefaultRetries: the Service has two healthy pods and one whose
// address refuses connections (a pod where nothing listens). Without a
// MeshRoute, GETs and POSTs through the client's sidecar all succeed:
// the sidecar counts connection failures and retries, so the refused
// endpoint was picked and the request went to another. A POST the app
// answers with 503 is not retried: the apps got exactly one request per
// call.
func TestDefaultRetries(t *testing.T) {
	needRoot(t)
	ns := meshNamespace(t)
	svc := createService(t, ns, "server", "server", httpPort(80, appPort))
	a, b := httpServerPod(t, ns, "server-a"), httpServerPod(t, ns, "server-b")
	refusing := startPod(t, podSpec{name: "refusing", namespace: ns, noInject: true})
	setEndpoints(t, svc, a, b, refusing)
	client := startPod(t, podSpec{name: "client", namespace: ns})
	waitEndpoints(t, client, ns, svc.Name, 3)

	const n = 30
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		res := calls(t, client.netns, AppConfig{Mode: HTTPClient, URL: serviceURL(svc, "/retry"), Count: n, Method: method})
		for _, r := range res {
			if !r.OK || r.Report == nil || (r.Report.Pod != "server-a" && r.Report.Pod != "server-b") {
				t.Errorf("%s %d: %+v", method, r.N, r)
			}
		}
		if len(res) != n {
			t.Errorf("%d %ss, want %d", len(res), method, n)
		}
	}
	stats := client.stats(t)
	failed, retried := clusterStat(stats, ns, svc.Name, "upstream_cx_connect_fail"), clusterStat(stats, ns, svc.Name, "upstream_rq_retry")
	if failed < 1 || retried < failed {
		t.Errorf("client cluster: %v connection failures, %v retries; want failures, each retried", failed, retried)
	}
	t.Logf("%d calls: %v connection failures to the refusing endpoint, %v retries", 2*n, failed, retried)

	before := inboundRequests(t, a) + inboundRequests(t, b)
	const posts = 10
	res := calls(t, client.netns, AppConfig{Mode: HTTPClient, URL: serviceURL(svc, StatusPathPrefix+"503"), Count: posts, Method: http.MethodPost})
	for _, r := range res {
		if r.Status != http.StatusServiceUnavailable || r.Report == nil {
			t.Errorf("POST %d: %+v, want the app's 503", r.N, r)
		}
	}
	if got := inboundRequests(t, a) + inboundRequests(t, b) - before; got != posts {
		t.Errorf("the apps got %v requests for %d POSTs answered 503, want one each (no retry)", got, posts)
	}
}

// waitEndpoints polls the client sidecar until its cluster to svc has
// want endpoints.
func waitEndpoints(t *testing.T, client *pod, ns, svc string, want int) {
	t.Helper()
	prefix := "outbound|80||" + svc + "." + ns + ".svc.cluster.local::"
	envtest.Eventually(t, wait, func() error {
		body := client.admin(t, "/clusters").Body
		hosts := map[string]bool{}
		for _, line := range strings.Split(body, "\n") {
			if rest, ok := strings.CutPrefix(line, prefix); ok && strings.Contains(rest, "::health_flags::") {
				hosts[strings.SplitN(rest, "::", 2)[0]] = true
			}
		}
		if len(hosts) != want {
			return fmt.Errorf("%d endpoints of %s, want %d", len(hosts), svc, want)
		}
		return nil
	})
}

// TestStreamIdleTimeout: the sidecars' HTTP connection managers carry the
// default stream idle timeout of an hour (Envoy's own, five minutes, cuts
// quiet long-lived streams), read from the real sidecars' config; with the
// Mesh setting it to 1s, a server-sent-events stream that goes quiet is
// ended by the sidecars (counted as downstream_rq_idle_timeout) after its
// first event: the setting is what the sidecars enforce.
func TestStreamIdleTimeout(t *testing.T) {
	needRoot(t)
	ns := meshNamespace(t)
	server, svc := echoServer(t, ns, podSpec{})
	client := startPod(t, podSpec{name: "client", namespace: ns})
	waitCall(t, client, serviceURL(svc, "/ready"))
	waitIdleTimeout(t, client, "3600s")
	waitIdleTimeout(t, server, "3600s")

	setMesh(t, meshv1alpha1.MeshSpec{Traffic: meshv1alpha1.MeshTraffic{StreamIdleTimeout: &metav1.Duration{Duration: time.Second}}})
	waitIdleTimeout(t, client, "1s")
	waitIdleTimeout(t, server, "1s")
	res := calls(t, client.netns, AppConfig{Mode: HTTPStream, URL: serviceURL(svc, StreamPath), Timeout: time.Minute})
	if len(res) != 1 || res[0].Status != http.StatusOK || !strings.Contains(res[0].Body, "data: hello") {
		t.Fatalf("stream: %+v, want 200 and the first event", res)
	}
	if strings.Contains(res[0].Error, "Timeout") {
		t.Errorf("the stream ended by the client's own timeout: %s", res[0].Error)
	}
	idle := sumMetrics(client.stats(t), "downstream_rq_idle_timeout") + sumMetrics(server.stats(t), "downstream_rq_idle_timeout")
	if idle < 1 {
		t.Errorf("no sidecar counted a stream idle timeout; the stream ended with %q", res[0].Error)
	}
}

// sumMetrics sums the samples of every metric whose name ends in suffix
// (the outbound connection managers' stat prefix, outbound_0.0.0.0_<port>,
// is split at its first dot by the tag extraction, so their metric names
// vary).
func sumMetrics(stats, suffix string) float64 {
	re := regexp.MustCompile(`(?m)^envoy_\S*` + regexp.QuoteMeta(suffix) + `(?:\{[^}]*\})? ([0-9.e+]+)$`)
	sum := 0.0
	for _, m := range re.FindAllStringSubmatch(stats, -1) {
		if v, err := strconv.ParseFloat(m[1], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// waitIdleTimeout polls p's active listeners until every HTTP connection
// manager has the stream idle timeout want (a listener being replaced
// drains with its old config).
func waitIdleTimeout(t *testing.T, p *pod, want string) {
	t.Helper()
	envtest.Eventually(t, wait, func() error {
		active := activeListeners(p.admin(t, "/config_dump?resource=dynamic_listeners").Body)
		all := strings.Count(active, `"stream_idle_timeout":`)
		if n := strings.Count(active, `"stream_idle_timeout":"`+want+`"`); n == 0 || n != all {
			return fmt.Errorf("%s: %d of %d stream idle timeouts are %s", p.obj.Name, n, all, want)
		}
		return nil
	})
}

// activeListeners are the active listeners of a config dump of
// dynamic_listeners, as compact JSON.
func activeListeners(body string) string {
	var dump struct {
		Configs []struct {
			ActiveState *struct {
				Listener json.RawMessage `json:"listener"`
			} `json:"active_state"`
		} `json:"configs"`
	}
	if json.Unmarshal([]byte(body), &dump) != nil {
		return ""
	}
	var out bytes.Buffer
	for _, c := range dump.Configs {
		if c.ActiveState != nil {
			_ = json.Compact(&out, c.ActiveState.Listener)
		}
	}
	return out.String()
}

// TestTelemetryNames: /stats/prometheus of a real sidecar names the
// destination cluster in full (its alt_stat_name has no dots, so Envoy's
// tag extraction does not split it at the service's first dot), and the
// cluster and its endpoints carry the service, port and pod metadata.
func TestTelemetryNames(t *testing.T) {
	needRoot(t)
	ns := meshNamespace(t)
	_, svc := echoServer(t, ns, podSpec{})
	client := startPod(t, podSpec{name: "client", namespace: ns})
	waitCall(t, client, serviceURL(svc, "/hello"))
	calls(t, client.netns, AppConfig{Mode: HTTPClient, URL: serviceURL(svc, "/hello"), Count: 3})

	stats := client.stats(t)
	if got := clusterStat(stats, ns, svc.Name, "upstream_rq_total"); got < 4 {
		t.Errorf("envoy_cluster_upstream_rq_total{envoy_cluster_name=%q} = %v, want ≥ 4; the cluster's lines:\n%s",
			outboundStatName(ns, svc.Name), got, grepLines(stats, "upstream_rq_total"))
	}
	if split := grepLines(stats, "svc_cluster_local_upstream"); split != "" {
		t.Errorf("cluster names split into metric names:\n%s", split)
	}
	fqdn := svc.Name + "." + ns + ".svc.cluster.local"
	var found bool
	for _, c := range configDumpClusters(client.admin(t, "/config_dump?resource=dynamic_active_clusters").Body) {
		if c.Name != "outbound|80||"+fqdn {
			continue
		}
		found = true
		md := c.Metadata.FilterMetadata["capstan"]
		if md["service"] != fqdn || md["name"] != svc.Name || md["namespace"] != ns || md["port"] != 80.0 || c.AltStatName != outboundStatName(ns, svc.Name) {
			t.Errorf("cluster %s: alt_stat_name %q, metadata %v", c.Name, c.AltStatName, md)
		}
	}
	if !found {
		t.Errorf("no cluster outbound|80||%s in the client's config", fqdn)
	}
	eds := client.admin(t, "/config_dump?resource=dynamic_endpoint_configs&include_eds").Body
	if !strings.Contains(eds, `"pod": "`+ns+`/server"`) {
		t.Errorf("the endpoints carry no pod metadata:\n%s", eds)
	}
}
