package main

import (
	"bytes"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capstanmesh/capstan/internal/golden"
)

// frontendStats is a frontend sidecar's exposition with n requests to v1
// and m to v2 (e5 of them 5xx at the listener), in Envoy's naming.
func frontendStats(n, m, e5 int, handshakes bool) string {
	var b strings.Builder
	hs := 0
	if handshakes {
		hs = 1
	}
	for _, c := range []struct {
		subset string
		count  int
	}{{"v1", n}, {"v2", m}} {
		name := subsetCluster(c.subset)
		fmt.Fprintf(&b, "envoy_cluster_upstream_rq_total{envoy_cluster_name=%q} %d\n", name, c.count)
		fmt.Fprintf(&b, "envoy_cluster_upstream_rq_xx{envoy_response_code_class=\"2\",envoy_cluster_name=%q} %d\n", name, c.count)
		fmt.Fprintf(&b, "envoy_cluster_upstream_rq_xx{envoy_response_code_class=\"5\",envoy_cluster_name=%q} 0\n", name)
		fmt.Fprintf(&b, "envoy_cluster_ssl_handshake{envoy_cluster_name=%q} %d\n", name, hs)
		// Half of the requests take at most 1ms, all at most 5ms.
		fmt.Fprintf(&b, "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=%q,le=\"0.5\"} 0\n", name)
		fmt.Fprintf(&b, "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=%q,le=\"1\"} %d\n", name, c.count/2)
		fmt.Fprintf(&b, "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=%q,le=\"5\"} %d\n", name, c.count)
		fmt.Fprintf(&b, "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=%q,le=\"+Inf\"} %d\n", name, c.count)
	}
	fmt.Fprintf(&b, "envoy_http_0_0_0_9080_downstream_rq_total{envoy_http_conn_manager_prefix=\"outbound_0\"} %d\n", n+m+e5)
	fmt.Fprintf(&b, "envoy_http_0_0_0_9080_downstream_rq_xx{envoy_response_code_class=\"5\",envoy_http_conn_manager_prefix=\"outbound_0\"} %d\n", e5)
	b.WriteString("envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix=\"prometheus\"} 99\n")
	return b.String()
}

// serverStats is a reviews sidecar's exposition: cx connections to its
// inbound HTTP port, ssl of them over TLS, refused failed handshakes.
func serverStats(cx, ssl, refused int) string {
	return fmt.Sprintf(`# TYPE envoy_http_downstream_cx_total counter
envoy_http_downstream_cx_total{envoy_http_conn_manager_prefix="inbound_9080"} %d
envoy_http_downstream_cx_ssl_total{envoy_http_conn_manager_prefix="inbound_9080"} %d
envoy_listener_ssl_connection_error{envoy_listener_address="0.0.0.0_15006"} %d
envoy_listener_ssl_connection_error{envoy_listener_address="0.0.0.0_15001"} 7
`, cx, ssl, refused)
}

func readingOf(at time.Time, frontend string, servers ...string) *reading {
	r := &reading{at: at, subsets: map[string]*counters{}}
	r.readFrontend(parseProm(frontend))
	for _, s := range servers {
		r.readServer(parseProm(s))
	}
	return r
}

// viewCases are snapshots the view renders: a canary at 75/25 with
// faults at the listener and the legacy caller refused; and no traffic.
func viewCases() map[string]Snapshot {
	t0 := time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)
	prev := readingOf(t0, frontendStats(100, 100, 0, true), serverStats(10, 1, 0), serverStats(0, 1, 0))
	cur := readingOf(t0.Add(2*time.Second), frontendStats(130, 110, 10, true), serverStats(10, 1, 4), serverStats(0, 1, 2))
	canary := diff(prev, cur, prev)
	canary.Routes = []RouteStatus{{Name: "reviews", Accepted: "True", Programmed: "True", Proxies: "3/3"}}
	idle := readingOf(t0, frontendStats(0, 0, 0, false))
	quiet := diff(idle, readingOf(t0.Add(time.Second), frontendStats(0, 0, 0, false)), idle)
	quiet.Routes = []RouteStatus{{Name: "reviews", Accepted: "True", Programmed: "False", Proxies: "0/1"}}
	px := proxylessSnapshot(prev, cur)
	px.Routes = canary.Routes
	return map[string]Snapshot{"canary": canary, "quiet": quiet, "proxyless": px}
}

func TestViewGolden(t *testing.T) {
	produced := map[string]bool{}
	for name, snap := range viewCases() {
		var tty, plain bytes.Buffer
		if err := renderTTY(&tty, snap, "Try: kubectl apply -f config/samples/canary-50.yaml\n"); err != nil {
			t.Fatal(err)
		}
		if err := renderPlain(&plain, snap); err != nil {
			t.Fatal(err)
		}
		for suffix, out := range map[string][]byte{".tty.golden": tty.Bytes(), ".plain.golden": plain.Bytes()} {
			path := filepath.Join("testdata", name+suffix)
			produced[path] = true
			golden.Check(t, path, out)
		}
	}
	golden.CheckOrphans(t, []string{".golden"}, produced)
}

// TestDiffRates checks the canary case's numbers, which the goldens show.
func TestDiffRates(t *testing.T) {
	s := viewCases()["canary"]
	v1, v2 := s.Subsets[0], s.Subsets[1]
	if v1.RPS != 15 || v2.RPS != 5 || v1.Share != 0.75 || v2.Share != 0.25 {
		t.Errorf("v1 %+v, v2 %+v: want 15 and 5 rps, 75%% and 25%%", v1, v2)
	}
	if v1.Success != 1 || v1.MTLS != "yes" {
		t.Errorf("v1 %+v: want success 1 over mTLS", v1)
	}
	// 50 requests at the listener in 2s, 10 of them 5xx.
	if s.All.RPS != 25 || s.All.Success != 0.8 {
		t.Errorf("all %+v: want 25 rps, success 0.8", s.All)
	}
	// Refusals on the inbound listener only (not 0.0.0.0_15001's).
	if s.Legacy.Refused != 3 || s.Legacy.Accepted != 0 {
		t.Errorf("legacy %+v: want 0 accepted, 3 refused per second", s.Legacy)
	}
}

func TestQuantile(t *testing.T) {
	prev := map[float64]float64{1: 0, 5: 0, math.Inf(1): 0}
	cur := map[float64]float64{1: 50, 5: 100, math.Inf(1): 100}
	cases := []struct{ q, want float64 }{{0.5, 1}, {0.25, 0.5}, {0.75, 3}, {0.99, 4.92}}
	for _, c := range cases {
		if got := quantile(c.q, prev, cur); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if got := quantile(0.5, cur, cur); !math.IsNaN(got) {
		t.Errorf("quantile without observations = %v, want NaN", got)
	}
	// Everything above the last finite bucket: its bound.
	if got := quantile(0.5, prev, map[float64]float64{1: 0, 5: 0, math.Inf(1): 10}); got != 5 {
		t.Errorf("quantile in +Inf = %v, want 5", got)
	}
}

func TestParseSample(t *testing.T) {
	s, ok := parseSample(`envoy_x{a="b,c",d="e\"f"} 12.5`)
	if !ok || s.name != "envoy_x" || s.labels["a"] != "b,c" || s.labels["d"] != `e"f` || s.value != 12.5 {
		t.Errorf("parsed %+v %v", s, ok)
	}
	if s, ok := parseSample("envoy_y 3"); !ok || s.name != "envoy_y" || s.value != 3 {
		t.Errorf("parsed %+v %v", s, ok)
	}
	if _, ok := parseSample("envoy_z{a=\"b\"} x"); ok {
		t.Error("a sample without a number parsed")
	}
}
