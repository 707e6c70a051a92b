package dataplane

import (
	"bytes"
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
)

// DestinationPolicy connection pool fields through real sidecars (issue
// #15, point 1); maxConnections and http2MaxRequests alone are in
// TestConfiguredLimitApplies.

// TestConnectionPool:
//   - maxConnections 10 with http1MaxPendingRequests 20: of 100 requests at
//     once that the app holds, the client's sidecar has 10 in flight on 10
//     connections and the rest pending, and refuses the others at once with
//     503 and x-envoy-overloaded (upstream_rq_pending_overflow) from the
//     moment 20 are pending. Requests waiting for the 10 connections to open
//     count as pending too, so between 20 and 30 are held, not exactly 30.
//     Envoy's breakers are shared by its workers but checked by each, so
//     each limit may be passed by one per worker (envoyWorkers);
//   - maxRequestsPerConnection 1: every one of 10 sequential requests on
//     one client connection opens a new upstream connection;
//   - idleTimeout 1s: requests 2s apart find their upstream connection
//     closed by the idle timeout and open a new one, all answered.
func TestConnectionPool(t *testing.T) {
	needRoot(t)
	ns := meshNamespace(t)
	// The app holds /hold requests until 101 are in flight: never, so they
	// wait for the client's timeout.
	_, svc := echoServer(t, ns, podSpec{app: &AppConfig{Hold: 101}})
	createPolicy(t, ns, svc.Name, &meshv1alpha1.ConnectionPool{
		TCP: &meshv1alpha1.TCPPool{MaxConnections: 10}, HTTP: &meshv1alpha1.HTTPPool{HTTP1MaxPendingRequests: 20},
	})
	client := startPod(t, podSpec{name: "client", namespace: ns})
	waitCall(t, client, serviceURL(svc, "/ready"))
	waitLimit(t, client, ns, svc.Name, 10)
	noFetchTimeout(t, client, ns, svc.Name)
	t.Run("pending", func(t *testing.T) { testPending(t, client, ns, serviceURL(svc, HoldPath)) })

	cluster := "outbound|80||" + svc.Name + "." + ns + ".svc.cluster.local"
	t.Run("max-requests-per-connection", func(t *testing.T) {
		setPool(t, ns, svc.Name, &meshv1alpha1.ConnectionPool{HTTP: &meshv1alpha1.HTTPPool{MaxRequestsPerConnection: 1}})
		waitClusterHas(t, client, cluster, `"max_requests_per_connection":1`)
		noFetchTimeout(t, client, ns, svc.Name)
		before := clusterStat(client.stats(t), ns, svc.Name, "upstream_cx_total")
		const n = 10
		allOK(t, "calls", calls(t, client.netns, AppConfig{Mode: HTTPClient, URL: serviceURL(svc, "/one"), Count: n}), n, "server")
		if got := clusterStat(client.stats(t), ns, svc.Name, "upstream_cx_total") - before; got != n {
			t.Errorf("%d requests opened %v upstream connections, want one each", n, got)
		}
	})
	t.Run("idle-timeout", func(t *testing.T) {
		setPool(t, ns, svc.Name, &meshv1alpha1.ConnectionPool{HTTP: &meshv1alpha1.HTTPPool{IdleTimeout: &metav1.Duration{Duration: time.Second}}})
		waitClusterHas(t, client, cluster, `"idle_timeout":"1s"`)
		noFetchTimeout(t, client, ns, svc.Name)
		before := clusterStat(client.stats(t), ns, svc.Name, "upstream_cx_idle_timeout")
		const n = 3
		allOK(t, "calls 2s apart", calls(t, client.netns, AppConfig{Mode: HTTPClient, URL: serviceURL(svc, "/idle"), Count: n, Interval: 2 * time.Second}), n, "server")
		if got := clusterStat(client.stats(t), ns, svc.Name, "upstream_cx_idle_timeout") - before; got < n-1 {
			t.Errorf("%v upstream connections closed idle between %d calls 2s apart, want ≥ %d", got, n, n-1)
		}
	})
}

func testPending(t *testing.T, client *pod, ns, url string) {
	const n, maxConnections, maxPending, workers = 100, 10, 20, envoyWorkers
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The held requests stay in the gauges until the client's timeout: long
	// enough for the stats polls of a loaded machine to see them.
	cmd, err := AppCommand(ctx, client.netns, AppConfig{Mode: HTTPLoad, URL: url, Concurrency: n, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the load client: %v", err)
	}
	// The poll ends early, with the client's result, if it exits first.
	pollCtx, stop := context.WithCancel(ctx)
	defer stop()
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		stop()
		close(exited)
	}()
	var held, overflow float64
	err = envtest.Poll(pollCtx, wait, func() error {
		stats := client.stats(t)
		active, pending := clusterStat(stats, ns, "server", "upstream_rq_active"), clusterStat(stats, ns, "server", "upstream_rq_pending_active")
		overflow = clusterStat(stats, ns, "server", "upstream_rq_pending_overflow")
		held = active + pending
		switch {
		case active < maxConnections || active > maxConnections+workers || pending > maxPending+workers:
			return fmt.Errorf("%v requests active, %v pending; want %d and at most %d (each up to %d more)", active, pending, maxConnections, maxPending, workers)
		case held < maxPending:
			return fmt.Errorf("%v requests held, want at least the %d pending that made Envoy refuse the rest", held, maxPending)
		case held+overflow != n:
			return fmt.Errorf("%v requests held and %v refused, want %d in all", held, overflow, n)
		}
		return nil
	})
	if err != nil {
		<-exited
		t.Fatalf("%v\nload client (exit %v): %s %s\nclient's cluster stats:\n%s", err, waitErr, stdout.String(), stderr.String(),
			grepLines(client.stats(t), outboundStatName(ns, "server")))
	}
	if got := clusterStat(client.stats(t), ns, "server", "upstream_cx_active"); got < maxConnections || got > maxConnections+workers {
		t.Errorf("%v upstream connections, want maxConnections %d (up to %d more)", got, maxConnections, workers)
	}
	<-exited
	if waitErr != nil {
		t.Fatalf("load client: %v: %s", waitErr, stderr.String())
	}
	var res LoadResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("load client: %v", err)
	}
	refused := int(overflow)
	if res.Statuses[http.StatusServiceUnavailable] != refused || res.Overloaded != refused || res.Errors != n-refused {
		t.Errorf("%d requests at once: %+v, want %d refused as overloaded and %v held until their timeout", n, res, refused, held)
	}
}

// noFetchTimeout: the updated cluster to svc warmed with the endpoints the
// control plane resent, not with Envoy's cached ones after its initial fetch
// timeout (15 s), which is what a delta server that sends only changed
// resources leaves it to.
func noFetchTimeout(t *testing.T, p *pod, ns, svc string) {
	t.Helper()
	if got := clusterStat(p.stats(t), ns, svc, "init_fetch_timeout"); got != 0 {
		t.Errorf("cluster %s: init_fetch_timeout = %v, want 0 (-1: no such stat)", outboundStatName(ns, svc), got)
	}
}

// setPool replaces the connection pool of the DestinationPolicy host.
func setPool(t *testing.T, ns, host string, pool *meshv1alpha1.ConnectionPool) {
	t.Helper()
	dp := &meshv1alpha1.DestinationPolicy{}
	dp.Name, dp.Namespace = host, ns
	update(t, dp, func() { dp.Spec.TrafficPolicy = &meshv1alpha1.TrafficPolicy{ConnectionPool: pool} })
}

// waitClusterHas polls p's active clusters until the named one's compact
// JSON contains want.
func waitClusterHas(t *testing.T, p *pod, cluster, want string) {
	t.Helper()
	envtest.Eventually(t, wait, func() error {
		var dump struct {
			Configs []struct {
				Cluster json.RawMessage `json:"cluster"`
			} `json:"configs"`
		}
		body := p.admin(t, "/config_dump?resource=dynamic_active_clusters").Body
		if err := json.Unmarshal([]byte(body), &dump); err != nil {
			return err
		}
		for _, c := range dump.Configs {
			var compact strings.Builder
			var v any
			if json.Unmarshal(c.Cluster, &v) != nil {
				continue
			}
			b, _ := json.Marshal(v)
			compact.Write(b)
			if strings.Contains(compact.String(), `"name":"`+cluster+`"`) && strings.Contains(compact.String(), want) {
				return nil
			}
		}
		return fmt.Errorf("cluster %s without %s yet", cluster, want)
	})
}
