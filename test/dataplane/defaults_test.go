package dataplane

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/test/envtest"
	"github.com/capstanmesh/capstan/xds/generate"
)

// The sidecar defaults Capstan sets where no policy does (issue #20,
// docs/generate.md "Defaults"), shown by real traffic through two sidecars.

// load runs an HTTPLoad client in from and returns what it saw.
func load(t *testing.T, from *pod, cfg AppConfig) LoadResult {
	t.Helper()
	cfg.Mode = HTTPLoad
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd, err := AppCommand(ctx, from.netns, cfg)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("load client in %s: %v\n%s", from.netns.Name, err, out)
	}
	var res LoadResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("load client output %q: %v", out, err)
	}
	return res
}

// clusterStat is a counter of the client's outbound cluster to svc's port
// 80, as /stats/prometheus names it.
func clusterStat(stats, ns, svc, name string) float64 {
	return metric(stats, "envoy_cluster_"+name, `envoy_cluster_name="`+outboundStatName(ns, svc)+`"`)
}

func outboundStatName(ns, svc string) string {
	return generate.StatName("outbound|80||" + svc + "." + ns + ".svc.cluster.local")
}

// envoyWorkers is the sidecars' worker count (the injector's default
// concurrency). Envoy's circuit breakers are shared by its workers but
// checked by each before it counts its own request or connection, so each
// limit may be passed by up to one per worker.
const envoyWorkers = 2

// TestNoOverflowUnderLoad: 2000 requests at once from one client through
// its sidecar and the server's: the server app holds them until all 2000
// are in flight at once (so none was queued or refused on the way), and
// none is refused by a circuit breaker — Envoy's own defaults would refuse
// the requests above 1024. With a DestinationPolicy limiting the service
// to 50 requests at once (http2MaxRequests, Envoy's max_requests, which
// counts requests to the cluster over any HTTP version), 300 requests at
// once: the app sees 50 at once, and the client's sidecar refuses the
// others with 503 and x-envoy-overloaded (the UO flag), each counted as
// upstream_rq_active_overflow on its cluster.
func TestNoOverflowUnderLoad(t *testing.T) {
	needRoot(t)
	ns := meshNamespace(t)
	const n = 2000
	_, svc := echoServer(t, ns, podSpec{app: &AppConfig{Hold: n}})
	client := startPod(t, podSpec{name: "client", namespace: ns})
	url := serviceURL(svc, HoldPath)
	waitCall(t, client, serviceURL(svc, "/ready"))

	res := load(t, client, AppConfig{URL: url, Concurrency: n, Timeout: time.Minute})
	if res.Statuses[http.StatusOK] != n || res.Overloaded != 0 || res.Errors != 0 {
		t.Errorf("%d requests at once: %+v, want all %d answered 200", n, res, n)
	}
	if res.MaxInFlight != n {
		t.Errorf("the server app saw at most %d requests at once, want %d", res.MaxInFlight, n)
	}
	stats := client.stats(t)
	for _, name := range []string{"upstream_rq_pending_overflow", "upstream_rq_active_overflow", "upstream_cx_overflow", "upstream_rq_retry_overflow"} {
		if got := clusterStat(stats, ns, svc.Name, name); got != 0 {
			t.Errorf("client cluster %s = %v, want 0", name, got)
		}
	}
}

// TestConfiguredLimitApplies: see TestNoOverflowUnderLoad. With
// maxConnections 50 instead, the app also sees 50 at once, the rest wait
// for a connection (pending requests stay unlimited) and are all answered,
// and the client's cluster counts connections it did not open
// (upstream_cx_overflow).
func TestConfiguredLimitApplies(t *testing.T) {
	needRoot(t)
	const limit, n = 50, 300
	t.Run("http2MaxRequests", func(t *testing.T) {
		ns, client := limitedServer(t, limit, &meshv1alpha1.ConnectionPool{HTTP: &meshv1alpha1.HTTPPool{HTTP2MaxRequests: limit}})
		before := clusterStat(client.stats(t), ns, "server", "upstream_rq_active_overflow")
		res := load(t, client, AppConfig{URL: "http://server." + ns + ":80" + HoldPath, Concurrency: n, Timeout: time.Minute})
		// Two workers may both pass the breaker's check at limit-1 before
		// either counts its request (envoyWorkers).
		if res.MaxInFlight < limit || res.MaxInFlight > limit+envoyWorkers {
			t.Errorf("the server app saw at most %d requests at once, want the limit %d (up to %d more)", res.MaxInFlight, limit, envoyWorkers)
		}
		refused := res.Statuses[http.StatusServiceUnavailable]
		if refused == 0 || res.Overloaded != refused || res.Errors != 0 || res.Statuses[http.StatusOK]+refused != n {
			t.Errorf("%d requests at once with a limit of %d: %+v, want 200s and overloaded 503s", n, limit, res)
		}
		stats := client.stats(t)
		overflows := clusterStat(stats, ns, "server", "upstream_rq_active_overflow") - before
		if overflows != float64(refused) {
			t.Errorf("client cluster counted %v overflows, the client saw %d overloaded 503s; overflow stats:\n%s", overflows, refused, grepLines(stats, "overflow"))
		}
	})
	t.Run("maxConnections", func(t *testing.T) {
		ns, client := limitedServer(t, limit, &meshv1alpha1.ConnectionPool{TCP: &meshv1alpha1.TCPPool{MaxConnections: limit}})
		res := load(t, client, AppConfig{URL: "http://server." + ns + ":80" + HoldPath, Concurrency: n, Timeout: time.Minute})
		// Envoy's connection limit is not exact: it keeps one connection
		// per selected host and connection pool even when the breaker is
		// open, so its documented bound is the limit plus endpoints (1
		// here) times connection pools (one per worker).
		if upper := limit + 1*envoyWorkers; res.MaxInFlight < limit || res.MaxInFlight > upper {
			t.Errorf("the server app saw at most %d requests at once, want the limit %d (Envoy's bound %d)", res.MaxInFlight, limit, upper)
		}
		if res.Statuses[http.StatusOK] != n || res.Errors != 0 {
			t.Errorf("%d requests at once with %d connections: %+v, want all answered 200", n, limit, res)
		}
		if got := clusterStat(client.stats(t), ns, "server", "upstream_cx_overflow"); got < 1 {
			t.Errorf("client cluster upstream_cx_overflow = %v, want ≥ 1", got)
		}
	})
}

// limitedServer starts a server holding requests until limit are in
// flight, a DestinationPolicy with pool for it, and a client whose
// sidecar has the policy's thresholds.
func limitedServer(t *testing.T, limit int, pool *meshv1alpha1.ConnectionPool) (string, *pod) {
	t.Helper()
	ns := meshNamespace(t)
	_, svc := echoServer(t, ns, podSpec{app: &AppConfig{Hold: limit}})
	createPolicy(t, ns, svc.Name, pool)
	client := startPod(t, podSpec{name: "client", namespace: ns})
	waitCall(t, client, serviceURL(svc, "/ready"))
	waitLimit(t, client, ns, svc.Name, limit)
	return ns, client
}

func createPolicy(t *testing.T, ns, host string, pool *meshv1alpha1.ConnectionPool) {
	t.Helper()
	dp := &meshv1alpha1.DestinationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: host, Namespace: ns},
		Spec: meshv1alpha1.DestinationPolicySpec{
			Host:          host,
			TrafficPolicy: &meshv1alpha1.TrafficPolicy{ConnectionPool: pool},
		},
	}
	if err := env.Client.Create(context.Background(), dp); err != nil {
		t.Fatalf("creating DestinationPolicy %s: %v", host, err)
	}
}

// waitLimit polls the client sidecar's config until its cluster to svc
// has the limit as one of its thresholds.
func waitLimit(t *testing.T, client *pod, ns, svc string, limit int) {
	t.Helper()
	cluster := "outbound|80||" + svc + "." + ns + ".svc.cluster.local"
	envtest.Eventually(t, wait, func() error {
		dump := client.admin(t, "/config_dump?resource=dynamic_active_clusters&mask=cluster.name,cluster.circuit_breakers")
		for _, c := range configDumpClusters(dump.Body) {
			if c.Name != cluster || len(c.CircuitBreakers.Thresholds) != 1 {
				continue
			}
			if th := c.CircuitBreakers.Thresholds[0]; th.MaxRequests == limit || th.MaxConnections == limit {
				return nil
			}
		}
		return fmt.Errorf("cluster %s without a threshold of %d: %s", cluster, limit, dump.Body)
	})
}

type dumpedCluster struct {
	Name            string `json:"name"`
	CircuitBreakers struct {
		Thresholds []struct {
			MaxRequests    int `json:"max_requests"`
			MaxConnections int `json:"max_connections"`
		} `json:"thresholds"`
	} `json:"circuit_breakers"`
	Metadata struct {
		FilterMetadata map[string]map[string]any `json:"filter_metadata"`
	} `json:"metadata"`
	AltStatName string `json:"alt_stat_name"`
}

// configDumpClusters are the clusters of a config dump of dynamic_active_clusters.
func configDumpClusters(body string) []dumpedCluster {
	var dump struct {
		Configs []struct {
			Cluster dumpedCluster `json:"cluster"`
		} `json:"configs"`
	}
	if json.Unmarshal([]byte(body), &dump) != nil {
		return nil
	}
	out := make([]dumpedCluster, 0, len(dump.Configs))
	for _, c := range dump.Configs {
		out = append(out, c.Cluster)
	}
	return out
}

// sslStat is a counter of the plain /stats of p's admin.
func sslStat(t *testing.T, p *pod, name string) float64 {
	t.Helper()
	body := p.admin(t, "/stats?filter="+name).Body
	for _, line := range strings.Split(body, "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if ok && k == name {
			var f float64
			if _, err := fmt.Sscan(v, &f); err == nil {
				return f
			}
		}
	}
	return -1
}
