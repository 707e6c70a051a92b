package observability

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"

	"github.com/capstanmesh/capstan/internal/meshmetrics"
)

const (
	grafanaDir    = "../../config/grafana"
	prometheusDir = "../../config/prometheus"
)

// exported is every metric name a query may use.
func exported() map[string]bool {
	out := map[string]bool{}
	for _, n := range slices.Concat(meshmetrics.SidecarMetrics, meshmetrics.ManagerMetrics) {
		out[n] = true
	}
	return out
}

// metricNames parses expr with Prometheus's parser and returns the metric
// names its selectors use; a selector without a name fails.
func metricNames(t *testing.T, where, expr string) []string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %q does not parse: %v", where, expr, err)
		return nil
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		if name == "" {
			t.Errorf("%s: selector %s names no metric", where, vs)
		}
		names = append(names, name)
		return nil
	})
	return names
}

// checkNames fails for each name no sidecar or the manager exports.
func checkNames(t *testing.T, where string, names []string) {
	t.Helper()
	known := exported()
	for _, n := range names {
		if !known[n] {
			t.Errorf("%s: metric %s is exported by neither the sidecars nor the manager (internal/meshmetrics)", where, n)
		}
	}
}

// Grafana's variables, replaced by values a query could take.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$namespace", ".*", "$service", ".*")

// labelValues is a template variable's label_values(selector, label).
var labelValues = regexp.MustCompile(`^label_values\((.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$`)

type dashboard struct {
	UID    string `json:"uid"`
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

// TestDashboards: both dashboards parse, every panel has a query, and every
// query (and query variable) parses and uses exported metrics only.
func TestDashboards(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(grafanaDir, "*.json"))
	if len(files) != 2 {
		t.Fatalf("%d dashboards in %s, want 2", len(files), grafanaDir)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		queries := 0
		for _, p := range d.Panels {
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", f, p.Title)
			}
			for _, q := range p.Targets {
				queries++
				checkNames(t, f+": "+p.Title, metricNames(t, f+": "+p.Title, grafanaVars.Replace(q.Expr)))
			}
		}
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			q, _ := v.Query.(map[string]any)
			m := labelValues.FindStringSubmatch(grafanaVars.Replace(q["query"].(string)))
			if m == nil {
				t.Errorf("%s: variable %s is not label_values(selector, label): %v", f, v.Name, v.Query)
				continue
			}
			checkNames(t, f+": variable "+v.Name, metricNames(t, f+": variable "+v.Name, m[1]))
		}
		t.Logf("%s (%s): %d panels, %d queries", filepath.Base(f), d.UID, len(d.Panels), queries)
	}
}

// ruleGroups reads the PrometheusRule's spec: a Prometheus rule file.
func ruleGroups(t *testing.T) ([]byte, []rule) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(prometheusDir, "prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var pr struct {
		Kind string          `json:"kind"`
		Spec json.RawMessage `json:"spec"`
	}
	if err := yaml.Unmarshal(raw, &pr); err != nil || pr.Kind != "PrometheusRule" {
		t.Fatalf("prometheusrule.yaml: kind %q, %v", pr.Kind, err)
	}
	var spec struct {
		Groups []struct {
			Rules []rule `json:"rules"`
		} `json:"groups"`
	}
	if err := json.Unmarshal(pr.Spec, &spec); err != nil {
		t.Fatal(err)
	}
	var rules []rule
	for _, g := range spec.Groups {
		rules = append(rules, g.Rules...)
	}
	file, err := yaml.JSONToYAML(pr.Spec)
	if err != nil {
		t.Fatal(err)
	}
	return file, rules
}

type rule struct {
	Alert string `json:"alert"`
	Expr  string `json:"expr"`
}

// wantAlerts are the alerts issue #19 asks for, one per production concern.
var wantAlerts = []string{
	"CapstanWorkloadCertificateExpiringSoon", "CapstanXDSNACKs", "CapstanProxyDisconnected", "CapstanSlowConvergence",
	"CapstanXDSStreamsRefused", "CapstanUninjectedPods", "CapstanServiceSuccessRateLow",
}

// TestAlertRules: every alert's expression parses and uses exported
// metrics only, and the expected alerts are all there.
func TestAlertRules(t *testing.T) {
	_, rules := ruleGroups(t)
	var alerts []string
	for _, r := range rules {
		alerts = append(alerts, r.Alert)
		checkNames(t, r.Alert, metricNames(t, r.Alert, r.Expr))
	}
	slices.Sort(alerts)
	want := slices.Sorted(slices.Values(wantAlerts))
	if !slices.Equal(alerts, want) {
		t.Errorf("alerts %v, want %v", alerts, want)
	}
}

// promtool finds the promtool the Makefile builds.
func promtool(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CAPSTAN_PROMTOOL"); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if found, _ := filepath.Glob("../../bin/promtool-*"); len(found) > 0 {
		return found[len(found)-1]
	}
	if testing.Short() {
		t.Skip("promtool not built (make promtool)")
	}
	t.Fatal("promtool not found: run make promtool (or set CAPSTAN_PROMTOOL)")
	return ""
}

// TestPromtool: promtool check rules accepts the rule file, and promtool
// test rules runs the unit tests of every alert (tests/), each firing and
// not firing; a test that fails, or an alert without a test, fails this.
func TestPromtool(t *testing.T) {
	bin := promtool(t)
	file, rules := ruleGroups(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), file, 0o600); err != nil {
		t.Fatal(err)
	}
	tests, _ := filepath.Glob(filepath.Join(prometheusDir, "tests", "*.yaml"))
	var args []string
	for _, src := range tests {
		raw, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rules {
			if !strings.Contains(string(raw), "alertname: "+r.Alert+"\n") {
				t.Errorf("%s: no unit test of %s", src, r.Alert)
			}
		}
		dst := filepath.Join(dir, filepath.Base(src))
		if err := os.WriteFile(dst, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, dst)
	}
	if len(args) == 0 {
		t.Fatal("no promtool unit tests in config/prometheus/tests")
	}
	for _, cmd := range [][]string{{"check", "rules", filepath.Join(dir, "rules.yaml")}, append([]string{"test", "rules"}, args...)} {
		out, err := exec.Command(bin, cmd...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(cmd, " "), err, out)
			continue
		}
		t.Logf("promtool %s:\n%s", strings.Join(cmd[:2], " "), out)
	}
}
