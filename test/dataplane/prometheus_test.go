package dataplane

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/test/envtest"
)

// prometheusVersionBinary is the Prometheus server `make prometheus`
// installs (Debian's package, the same as promtool's);
// CAPSTAN_PROMETHEUS, which make exports, overrides it.
const prometheusVersionBinary = "prometheus-2.42.0+ds-5+deb12u1"

// scrapeInterval is the live Prometheus's scrape and rule evaluation
// interval: short, so that rates have samples within seconds.
const scrapeInterval = time.Second

// promServer is a real Prometheus server on loopback, and its HTTP API.
type promServer struct {
	url string
}

// sidecarJob is the scrape job of the sidecars.
const sidecarJob = "sidecars"

// promTarget is one scrape target: host:port, path and target labels.
type promTarget struct {
	job, addr, path string
	labels          map[string]string
}

// promConfig is the scrape configuration: one job per target kind, the
// sidecars' with the PodMonitor's metric relabelings (so that a series it
// drops is missing here too), and the PrometheusRule's groups as the rule
// file.
func promConfig(t *testing.T, targets []promTarget, rulesFile string) []byte {
	t.Helper()
	relabel := podMonitorRelabelings(t)
	jobs := map[string]map[string]any{}
	var order []string
	for _, tg := range targets {
		job := jobs[tg.job]
		if job == nil {
			job = map[string]any{"job_name": tg.job, "metrics_path": tg.path, "static_configs": []map[string]any{}}
			if tg.job == sidecarJob {
				job["metric_relabel_configs"] = relabel
			}
			jobs[tg.job] = job
			order = append(order, tg.job)
		}
		job["static_configs"] = append(job["static_configs"].([]map[string]any), map[string]any{"targets": []string{tg.addr}, "labels": tg.labels})
	}
	var scrape []map[string]any
	for _, name := range order {
		scrape = append(scrape, jobs[name])
	}
	cfg := map[string]any{
		"global":         map[string]any{"scrape_interval": scrapeInterval.String(), "evaluation_interval": scrapeInterval.String()},
		"rule_files":     []string{rulesFile},
		"scrape_configs": scrape,
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// podMonitorRelabelings are config/prometheus's PodMonitor
// metricRelabelings in Prometheus's own spelling.
func podMonitorRelabelings(t *testing.T) []map[string]any {
	t.Helper()
	var pm struct {
		Spec struct {
			PodMetricsEndpoints []struct {
				MetricRelabelings []struct {
					SourceLabels []string `json:"sourceLabels"`
					Regex        string   `json:"regex"`
					Action       string   `json:"action"`
				} `json:"metricRelabelings"`
			} `json:"podMetricsEndpoints"`
		} `json:"spec"`
	}
	readYAML(t, "config/prometheus/podmonitor.yaml", &pm)
	var out []map[string]any
	for _, ep := range pm.Spec.PodMetricsEndpoints {
		for _, r := range ep.MetricRelabelings {
			out = append(out, map[string]any{"source_labels": r.SourceLabels, "regex": r.Regex, "action": r.Action})
		}
	}
	if len(out) == 0 {
		t.Fatal("the PodMonitor has no metricRelabelings")
	}
	return out
}

// readYAML reads a repository file into v.
func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	root, err := envtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// startPrometheus runs Prometheus scraping targets, with the
// PrometheusRule's rules loaded, until t ends.
func startPrometheus(t *testing.T, targets []promTarget) *promServer {
	t.Helper()
	bin := os.Getenv("CAPSTAN_PROMETHEUS")
	if bin == "" {
		root, err := envtest.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		bin = filepath.Join(root, "bin", prometheusVersionBinary)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("prometheus: %v (run make prometheus)", err)
	}
	dir := t.TempDir()
	var rule struct {
		Spec json.RawMessage `json:"spec"`
	}
	readYAML(t, "config/prometheus/prometheusrule.yaml", &rule)
	rules := filepath.Join(dir, "rules.yml")
	if err := os.WriteFile(rules, rule.Spec, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, promConfig(t, targets, rules), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, err := freeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	log := &strings.Builder{}
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-done:
			if err != nil && !t.Failed() {
				t.Logf("prometheus exited: %v", err)
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			if err := <-done; err != nil {
				t.Logf("prometheus killed: %v", err)
			}
		}
		if t.Failed() {
			t.Logf("prometheus log:\n%s", log.String())
		}
	})
	p := &promServer{url: "http://" + addr}
	envtest.Eventually(t, wait, func() error {
		select {
		case err := <-done:
			t.Fatalf("prometheus exited: %v\n%s", err, log.String())
		default:
		}
		code, _, err := hostGet(p.url + "/-/ready")
		if err != nil {
			return fmt.Errorf("prometheus not ready: %w", err)
		}
		if code != http.StatusOK {
			return fmt.Errorf("prometheus not ready: %d", code)
		}
		return nil
	})
	return p
}

// promSample is one series of an instant query's result.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// value is the sample's value (NaN and ±Inf included).
func (s promSample) value() float64 {
	str, _ := s.Value[1].(string)
	v, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return 0
	}
	return v
}

// get calls the HTTP API and decodes its data into out.
func (p *promServer) get(path string, params url.Values, out any) error {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(p.url + path + "?" + params.Encode())
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var r struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	if r.Status != "success" {
		return fmt.Errorf("GET %s %v: %s", path, params, r.Error)
	}
	return json.Unmarshal(r.Data, out)
}

// query evaluates an instant query at ts (now when zero).
func (p *promServer) query(expr string, ts time.Time) ([]promSample, error) {
	params := url.Values{"query": {expr}}
	if !ts.IsZero() {
		params.Set("time", strconv.FormatFloat(float64(ts.UnixMilli())/1000, 'f', 3, 64))
	}
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.get("/api/v1/query", params, &data); err != nil {
		return nil, err
	}
	switch data.ResultType {
	case "vector":
		var out []promSample
		return out, json.Unmarshal(data.Result, &out)
	case "scalar":
		var v [2]any
		return []promSample{{Value: v}}, json.Unmarshal(data.Result, &v)
	default:
		return nil, fmt.Errorf("%s: result type %s", expr, data.ResultType)
	}
}

// scalar evaluates expr, which must give one series, and returns its value.
func (p *promServer) scalar(expr string, ts time.Time) (float64, error) {
	res, err := p.query(expr, ts)
	if err != nil {
		return 0, err
	}
	if len(res) != 1 {
		return 0, fmt.Errorf("%s: %d series, want 1: %v", expr, len(res), res)
	}
	return res[0].value(), nil
}

// series lists the series that match a selector.
func (p *promServer) series(selector string) ([]map[string]string, error) {
	var out []map[string]string
	err := p.get("/api/v1/series", url.Values{"match[]": {selector}, "start": {strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10)}}, &out)
	return out, err
}

// alertsNamed returns the labels of the active (pending or firing) alerts
// of a rule, by state.
func (p *promServer) alertsNamed(name string) (map[string][]map[string]string, error) {
	var data struct {
		Alerts []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	}
	if err := p.get("/api/v1/alerts", url.Values{}, &data); err != nil {
		return nil, err
	}
	out := map[string][]map[string]string{}
	for _, a := range data.Alerts {
		if a.Labels["alertname"] == name {
			out[a.State] = append(out[a.State], a.Labels)
		}
	}
	return out, nil
}

// hostPort is the host:port of an http URL.
func hostPort(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// sidecarTarget is a pod's sidecar as the PodMonitor scrapes it, with the
// target labels the Prometheus Operator gives it.
func sidecarTarget(p *pod) promTarget {
	return promTarget{job: sidecarJob, addr: net.JoinHostPort(p.netns.IP.String(), strconv.Itoa(meshv1alpha1.PortStats)),
		path: "/stats/prometheus", labels: map[string]string{"namespace": p.obj.Namespace, "pod": p.obj.Name}}
}
