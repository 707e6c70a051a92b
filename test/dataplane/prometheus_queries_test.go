package dataplane

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/capstanmesh/capstan/test/envtest"
)

// liveQuery is one PromQL expression of config/prometheus or
// config/grafana, and where it comes from.
type liveQuery struct {
	where, expr string
}

// noDataWhenHealthy are the alerts whose condition is false in a healthy
// mesh, so their expression has no data: each is checked by the part
// before its final comparison instead (its selector and aggregation).
var noDataWhenHealthy = map[string]string{
	"CapstanWorkloadCertificateExpiringSoon": "certificates are far from expiry",
	"CapstanXDSNACKs":                        "no proxy NACKs",
	"CapstanProxyDisconnected":               "every sidecar is connected",
	"CapstanSlowConvergence":                 "convergence is fast",
	"CapstanXDSStreamsRefused":               "no stream is refused",
}

// notInHarness are the expressions with no data here at all: the series
// capstan_pods_without_current_sidecar exists only for pods without a
// current sidecar, and the harness's operator runs no un-injected pods
// reporter (controllers/uninjected, whose test covers the series).
var notInHarness = map[string]bool{
	"alert CapstanUninjectedPods":                                true,
	"capstan-control-plane.json: Pods without a current sidecar": true,
}

// finalComparison is an alert's trailing comparison with a constant.
var finalComparison = regexp.MustCompile(`\s*(>|<|==|!=|>=|<=)\s*[0-9.*\s]+$`)

// ruleQueries are the PrometheusRule's alert expressions, those of
// noDataWhenHealthy without their final comparison.
func ruleQueries(t *testing.T) []liveQuery {
	t.Helper()
	var pr struct {
		Spec struct {
			Groups []struct {
				Rules []struct {
					Alert  string `json:"alert"`
					Record string `json:"record"`
					Expr   string `json:"expr"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"spec"`
	}
	readYAML(t, "config/prometheus/prometheusrule.yaml", &pr)
	var out []liveQuery
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			name := "alert " + r.Alert
			if r.Record != "" {
				name = "record " + r.Record
			}
			expr := strings.TrimSpace(r.Expr)
			if _, ok := noDataWhenHealthy[r.Alert]; ok {
				cut := finalComparison.ReplaceAllString(expr, "")
				if cut == expr {
					t.Fatalf("%s: no final comparison to leave out of %q", name, expr)
				}
				name, expr = name+" (without its comparison)", cut
			}
			out = append(out, liveQuery{where: name, expr: expr})
		}
	}
	return out
}

// dashboardQueries are the dashboards' panel queries, and their template
// variables' label_values(selector, label) as selector and label, with
// Grafana's variables set to the test's namespace, any service and a
// one-minute rate interval.
func dashboardQueries(t *testing.T, namespace string) ([]liveQuery, []liveQuery) {
	t.Helper()
	root, err := envtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(root, "config/grafana/*.json"))
	vars := strings.NewReplacer("$__rate_interval", "1m", "$__interval", "1m", "$namespace", namespace, "$service", ".*")
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)
	var panels, variables []liveQuery
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
			Templating struct {
				List []struct {
					Name  string `json:"name"`
					Type  string `json:"type"`
					Query any    `json:"query"`
				} `json:"list"`
			} `json:"templating"`
		}
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		base := filepath.Base(f)
		for _, p := range d.Panels {
			for _, q := range p.Targets {
				panels = append(panels, liveQuery{where: base + ": " + p.Title, expr: vars.Replace(q.Expr)})
			}
		}
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			obj, _ := v.Query.(map[string]any)
			q, _ := obj["query"].(string)
			m := labelValues.FindStringSubmatch(vars.Replace(q))
			if m == nil {
				t.Fatalf("%s: variable %s: %q is not label_values(selector, label)", base, v.Name, q)
			}
			variables = append(variables, liveQuery{where: base + ": variable " + v.Name + " (label " + m[2] + ")", expr: m[1]})
		}
	}
	if len(panels) == 0 {
		t.Fatal("no dashboard queries found")
	}
	return panels, variables
}

// goldenCounts are a Service's golden counters by response-code class,
// read from the sidecars themselves and from Prometheus.
type goldenCounts struct {
	// outbound: the client's cluster stats of the destination subset;
	// route: its route's; inbound: the server's.
	outbound, route, inbound [2]float64 // 2xx, 5xx
}

// TestPrometheusQueries: a real Prometheus scrapes three real sidecars
// (the PodMonitor's relabelings applied) and the manager, with the
// PrometheusRule loaded. Every expression of the alerts and dashboards
// returns data for the live mesh (noDataWhenHealthy and notInHarness say
// which are checked otherwise, and why); the golden counters Prometheus
// holds match the calls sent exactly (counters: tolerance 0; the server
// answers 503 to the failing calls, which no default retry repeats); the
// dashboards' request rate times its window (at least 15s) is within
// [n, 1.2n] of the n calls sent (Prometheus extrapolates an increase to
// the window's edges); the success rate is 0.8 ± 0.02 (rate() limits its extrapolation
// at a counter's zero point, which differs between the small 2xx and 5xx
// counters); and the
// success-rate alert is active for the Service.
func TestPrometheusQueries(t *testing.T) {
	needRoot(t)
	ns := meshNamespace(t)
	svc := createService(t, ns, "server", "server", httpPort(scopedPort, scopedPort))
	v1, v2 := versionedServer(t, ns, "v1"), versionedServer(t, ns, "v2")
	setEndpoints(t, svc, v1, v2)
	client := startPod(t, podSpec{name: "client", namespace: ns})
	prom := startPrometheus(t, []promTarget{sidecarTarget(client), sidecarTarget(v1), sidecarTarget(v2),
		{job: "manager", addr: hostPort(t, op.metricsURL), path: "/metrics"}})
	// Changes once Prometheus has scraped the manager: the webhooks' and
	// the injection's latencies, a translation, a push and its convergence.
	waitScraped(t, prom, managerUp, time.Now())
	routeToSubset(t, ns, "v2")
	createPodObject(t, podSpec{name: "injected-only", namespace: ns, serviceAccount: "client"})
	okURL, failURL := serviceURL(svc, "/golden"), serviceURL(svc, "/status/503")
	awaitSubsetRoute(t, client, okURL, ns, "v2")
	// The 5xx series exist before the calls that are counted.
	if res := callsFrom(t, client, failURL, 1); len(res) != 1 || res[0].Status != 503 {
		t.Fatalf("call to %s: %+v, want 503", failURL, res)
	}
	before, _ := syncedCounts(t, prom, client, v2)
	// The rates' window opens just before the client's latest scrape, which
	// holds its counters from before the counted calls: a window opening
	// when the counters were found in step could have its first sample
	// after some calls, and rate() would miss them.
	clientUp := fmt.Sprintf(`up{job=%q, pod=%q}`, sidecarJob, client.obj.Name)
	start := lastScrape(t, prom, clientUp).Add(-time.Millisecond)

	const nOK, nFail = 40, 10
	allOK(t, "calls counted", callsFrom(t, client, okURL, nOK), nOK, "server-v2")
	for _, r := range callsFrom(t, client, failURL, nFail) {
		if r.Status != 503 {
			t.Errorf("failing call %d: %+v, want 503", r.N, r)
		}
	}
	after, end := syncedCounts(t, prom, client, v2)
	checkGoldenCounts(t, before, after, nOK, nFail)
	// The rates are read over at least rateWindow, once Prometheus has
	// scraped to its end: extrapolation to the window's end then adds at
	// most a scrape interval's worth.
	end = waitScraped(t, prom, clientUp, start.Add(rateWindow), end)
	checkDashboardRates(t, prom, ns, end, end.Sub(start), nOK+nFail)
	checkSuccessRateAlert(t, prom, ns)

	panels, variables := dashboardQueries(t, ns)
	checkAllReturnData(t, prom, append(ruleQueries(t), panels...), variables)
}

// rateWindow is the shortest window the rates are read over.
const rateWindow = 15 * time.Second

// managerUp selects the manager target's up series.
const managerUp = `up{job="manager"}`

// waitScraped waits until Prometheus has scraped the target of an up
// series at or after each of the times, and returns the latest of them.
func waitScraped(t *testing.T, prom *promServer, up string, times ...time.Time) time.Time {
	t.Helper()
	last := times[0]
	for _, ts := range times {
		if ts.After(last) {
			last = ts
		}
	}
	envtest.Eventually(t, wait, func() error {
		got, err := scrapedAt(prom, up)
		if err != nil {
			return err
		}
		if got.Before(last) {
			return fmt.Errorf("last scrape of %s at %v, want at or after %v", up, got, last)
		}
		return nil
	})
	return last
}

// scrapedAt is the time of Prometheus's latest scrape of the target of an
// up series.
func scrapedAt(prom *promServer, up string) (time.Time, error) {
	ts, err := prom.scalar("timestamp("+up+")", time.Time{})
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(int64(math.Round(ts * 1000))), nil
}

// lastScrape is scrapedAt, failing t on an error.
func lastScrape(t *testing.T, prom *promServer, up string) time.Time {
	t.Helper()
	at, err := scrapedAt(prom, up)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// syncedCounts waits until Prometheus holds the sidecars' current golden
// counters (read from their stats), and returns them with the time
// Prometheus was found in step.
func syncedCounts(t *testing.T, prom *promServer, client, server *pod) (goldenCounts, time.Time) {
	t.Helper()
	ns := client.obj.Namespace
	out := map[string]string{"workload": "client", "workload_namespace": ns, "destination_service_name": "server", "destination_subset": "v2"}
	route := map[string]string{"workload": "client", "workload_namespace": ns, "route": ns + "/server/0"}
	// Inbound application traffic (the stats port's requests, Prometheus's
	// scrapes among them, have no connection_security).
	in := map[string]string{"workload": "server", "workload_namespace": ns, "connection_security": "mtls"}
	classes := []string{"2", "5"}
	var local, remote goldenCounts
	var at time.Time
	envtest.Eventually(t, wait, func() error {
		cs, ss := client.stats(t), server.stats(t)
		at = time.Now()
		for i, class := range classes {
			local.outbound[i] = sample(cs, "envoy_cluster_upstream_rq_xx", with(out, class, nil))
			local.route[i] = sample(cs, "envoy_vhost_upstream_rq_xx", with(route, class, nil))
			local.inbound[i] = sample(ss, "envoy_http_downstream_rq_xx", with(in, class, nil))
			for _, c := range []struct {
				name string
				sel  map[string]string
				dst  *float64
			}{
				{"envoy_cluster_upstream_rq_xx", with(out, class, client), &remote.outbound[i]},
				{"envoy_vhost_upstream_rq_xx", with(route, class, client), &remote.route[i]},
				{"envoy_http_downstream_rq_xx", with(in, class, server), &remote.inbound[i]},
			} {
				v, err := prom.scalar("sum("+selector(c.name, c.sel)+")", time.Time{})
				if err != nil {
					return err
				}
				*c.dst = v
			}
		}
		if local != remote {
			return fmt.Errorf("prometheus holds %+v, the sidecars %+v", remote, local)
		}
		return nil
	})
	return remote, at
}

// with is labels plus the response-code class and, for a Prometheus
// selector, the target's pod label.
func with(labels map[string]string, class string, target *pod) map[string]string {
	out := map[string]string{"envoy_response_code_class": class}
	if target != nil {
		out["pod"] = target.obj.Name
	}
	for k, v := range labels {
		out[k] = v
	}
	return out
}

// selector is a PromQL selector of name with labels, in label order.
func selector(name string, labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%q", k, labels[k]))
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

// checkGoldenCounts: each golden counter moved by exactly the calls sent.
func checkGoldenCounts(t *testing.T, before, after goldenCounts, nOK, nFail int) {
	t.Helper()
	want := [2]float64{float64(nOK), float64(nFail)}
	for _, c := range []struct {
		what   string
		b, a   [2]float64
		counts bool
	}{
		{"client → server (cluster, subset v2)", before.outbound, after.outbound, true},
		{"client's route", before.route, after.route, true},
		{"server inbound", before.inbound, after.inbound, true},
	} {
		for i, class := range []string{"2xx", "5xx"} {
			if got := c.a[i] - c.b[i]; got != want[i] {
				t.Errorf("%s %s: +%v in Prometheus, want +%v (calls sent)", c.what, class, got, want[i])
			}
		}
	}
}

// checkDashboardRates evaluates the Services dashboard's request-rate and
// success-rate queries over the window of the counted calls.
func checkDashboardRates(t *testing.T, prom *promServer, ns string, end time.Time, window time.Duration, n int) {
	t.Helper()
	w := fmt.Sprintf("%dms", window.Milliseconds())
	sel := fmt.Sprintf(`destination_service_namespace=%q, destination_service_name="server"`, ns)
	rate, err := prom.scalar(fmt.Sprintf(`sum(rate(envoy_cluster_upstream_rq_xx{%s}[%s]))`, sel, w), end)
	if err != nil {
		t.Fatal(err)
	}
	if got := rate * window.Seconds(); got < float64(n) || got > 1.2*float64(n) {
		t.Errorf("request rate × %s = %.1f, want within [%d, %d] (calls sent, +20%% for extrapolation)", window, got, n, n*6/5)
	}
	success, err := prom.scalar(fmt.Sprintf(`sum(rate(envoy_cluster_upstream_rq_xx{%s, envoy_response_code_class!="5"}[%s])) / sum(rate(envoy_cluster_upstream_rq_xx{%s}[%s]))`, sel, w, sel, w), end)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(success-0.8) > 0.02 {
		t.Errorf("success rate over the counted calls = %.3f, want 0.8 ± 0.02 (40 of 50)", success)
	}
	t.Logf("over %s: request rate × window %.1f for %d calls, success rate %.3f", window, rate*window.Seconds(), n, success)
}

// checkSuccessRateAlert: Prometheus evaluates CapstanServiceSuccessRateLow
// as active (pending, its for: not yet passed) for the Service.
func checkSuccessRateAlert(t *testing.T, prom *promServer, ns string) {
	t.Helper()
	envtest.Eventually(t, wait, func() error {
		alerts, err := prom.alertsNamed("CapstanServiceSuccessRateLow")
		if err != nil {
			return err
		}
		for _, a := range append(alerts["pending"], alerts["firing"]...) {
			if a["destination_service_namespace"] == ns && a["destination_service_name"] == "server" {
				return nil
			}
		}
		return fmt.Errorf("CapstanServiceSuccessRateLow is not active for %s/server: %v", ns, alerts)
	})
}

// checkAllReturnData polls until every query returns at least one series,
// and every variable's selector matches a series with its label.
func checkAllReturnData(t *testing.T, prom *promServer, queries, variables []liveQuery) {
	t.Helper()
	labelOf := regexp.MustCompile(`\(label ([a-z_]+)\)$`)
	missing := map[string]string{}
	err := envtest.Poll(t.Context(), wait, func() error {
		clear(missing)
		var nan []string
		for _, q := range queries {
			if notInHarness[q.where] {
				continue
			}
			res, err := prom.query(q.expr, time.Time{})
			switch {
			case err != nil:
				missing[q.where] = err.Error()
			case len(res) == 0:
				missing[q.where] = "no data: " + q.expr
			case allNaN(res):
				nan = append(nan, q.where+": "+q.expr)
			}
		}
		for _, v := range variables {
			label := labelOf.FindStringSubmatch(v.where)[1]
			series, err := prom.series(v.expr)
			if err != nil {
				missing[v.where] = err.Error()
				continue
			}
			if !hasLabel(series, label) {
				missing[v.where] = "no series with label " + label + ": " + v.expr
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%d of %d queries have no data: %v", len(missing), len(queries)+len(variables), missing)
		}
		t.Logf("%d queries and %d variables return data; only NaN (a quantile over a window without events): %q", len(queries), len(variables), nan)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for where := range notInHarness {
		found := false
		for _, q := range queries {
			found = found || q.where == where
		}
		if !found {
			t.Errorf("notInHarness names %q, which is no query any more", where)
		}
	}
}

// allNaN reports whether every sample is NaN.
func allNaN(res []promSample) bool {
	for _, s := range res {
		if !math.IsNaN(s.value()) {
			return false
		}
	}
	return true
}

func hasLabel(series []map[string]string, label string) bool {
	for _, s := range series {
		if s[label] != "" {
			return true
		}
	}
	return false
}
