package dataplane

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/capstanmesh/capstan/internal/loadgen"
	"github.com/capstanmesh/capstan/internal/netpod"
)

// benchHopEnv turns TestHopBenchmark on (`make bench-hop` sets it); its
// knobs are benchHopEnv + "_RATES" (comma-separated requests per second),
// "_RUNS", "_DURATION", "_WARMUP" and "_CONNECTIONS", and "_OUT", a file
// the report is written to besides the test's log.
const benchHopEnv = "BENCH_HOP"

// hopConfig is the benchmark's plan.
type hopConfig struct {
	rates []float64
	runs  int
	opts  netpod.RateOptions
	out   string
}

func hopConfigFromEnv(t *testing.T) hopConfig {
	t.Helper()
	get := func(name, def string) string {
		if v := os.Getenv(benchHopEnv + "_" + name); v != "" {
			return v
		}
		return def
	}
	c := hopConfig{out: get("OUT", ""), opts: netpod.RateOptions{BodySize: hopBodySize}}
	var err error
	for _, r := range strings.Split(get("RATES", "500,2000"), ",") {
		v, perr := strconv.ParseFloat(strings.TrimSpace(r), 64)
		if perr != nil {
			t.Fatalf("%s_RATES: %v", benchHopEnv, perr)
		}
		c.rates = append(c.rates, v)
	}
	if c.runs, err = strconv.Atoi(get("RUNS", "3")); err != nil {
		t.Fatalf("%s_RUNS: %v", benchHopEnv, err)
	}
	if c.opts.Connections, err = strconv.Atoi(get("CONNECTIONS", "16")); err != nil {
		t.Fatalf("%s_CONNECTIONS: %v", benchHopEnv, err)
	}
	if c.opts.Duration, err = time.ParseDuration(get("DURATION", "20s")); err != nil {
		t.Fatalf("%s_DURATION: %v", benchHopEnv, err)
	}
	if c.opts.Warmup, err = time.ParseDuration(get("WARMUP", "3s")); err != nil {
		t.Fatalf("%s_WARMUP: %v", benchHopEnv, err)
	}
	return c
}

// TestHopBenchmark measures the cost of a hop (docs/benchmarks.md): for
// each run and each rate, the direct path and the sidecar path one after
// the other (which goes first alternates), then a report of the added
// latency and the sidecars' usage with their spread over the runs. Every
// request must succeed; the figures are reported, never asserted.
func TestHopBenchmark(t *testing.T) {
	if os.Getenv(benchHopEnv) != "1" {
		t.Skipf("a benchmark: make bench-hop runs it (%s=1)", benchHopEnv)
	}
	needRoot(t)
	cfg := hopConfigFromEnv(t)
	f := newHopFixture(t)
	idle := [2]procUsage{mustReadProc(t, f.clientEnvoy), mustReadProc(t, f.serverEnvoy)}
	var runs []hopRun
	for run := 1; run <= cfg.runs; run++ {
		for i, rate := range cfg.rates {
			o := cfg.opts
			o.Rate = rate
			r := f.measureHop(t, o, (run+i)%2 == 0)
			r.run = run
			checkRate(t, fmt.Sprintf("run %d at %v/s direct", run, rate), r.direct, o)
			checkRate(t, fmt.Sprintf("run %d at %v/s through the sidecars", run, rate), r.mesh, o)
			t.Log(runLine(r))
			runs = append(runs, r)
		}
	}
	report := hopReport(cfg, idle, runs)
	t.Log("\n" + report)
	if cfg.out != "" {
		if err := os.WriteFile(cfg.out, []byte(report), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// ms formats a duration in milliseconds with two decimals.
func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func runLine(r hopRun) string {
	q := func(x loadgen.Quantiles) string { return ms(x.P50) + " / " + ms(x.P90) + " / " + ms(x.P99) }
	return fmt.Sprintf("| %v | %d | %s | %s | %s | %.0f / %.0f | %.0f%% / %.0f%% | %.1f / %.1f | %s |",
		r.rate, r.run, q(r.direct.Latency), q(r.mesh.Latency), q(added(r)), achieved(r.direct), achieved(r.mesh),
		100*r.client.cores, 100*r.server.cores, mib(r.client.rss), mib(r.server.rss), r.load)
}

// achieved is the rate at which answers came back: below the schedule's
// rate when the path could not keep up (its queue, and so its latency,
// then grows with the run's length).
func achieved(res netpod.RateResult) float64 {
	if res.Elapsed <= 0 {
		return 0
	}
	return float64(res.OK) / res.Elapsed.Seconds()
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// added is the sidecar path's latency quantiles minus the direct path's.
func added(r hopRun) loadgen.Quantiles {
	m, d := r.mesh.Latency, r.direct.Latency
	return loadgen.Quantiles{P50: m.P50 - d.P50, P90: m.P90 - d.P90, P99: m.P99 - d.P99, P999: m.P999 - d.P999, Max: m.Max - d.Max}
}

// spread formats the median of vs and their range.
func spread(vs []float64, format string) string {
	s := slices.Clone(vs)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return fmt.Sprintf(format+" ("+format+"–"+format+")", med, s[0], s[len(s)-1])
}

func hopReport(cfg hopConfig, idle [2]procUsage, runs []hopRun) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d runs; each run: %v warm-up then %v measured per path and rate, %d B bodies, at most %d keep-alive connections\n",
		cfg.runs, cfg.opts.Warmup, cfg.opts.Duration, cfg.opts.BodySize, cfg.opts.Connections)
	fmt.Fprintf(&b, "sidecars before the runs: RSS client %.1f MiB (%.1f anonymous), server %.1f MiB (%.1f anonymous)\n",
		mib(idle[0].rss), mib(idle[0].anon), mib(idle[1].rss), mib(idle[1].anon))
	for _, rate := range cfg.rates {
		var lag50, lag99 time.Duration
		for _, r := range runs {
			if r.rate == rate {
				lag50 = max(lag50, r.direct.Lag.P50, r.mesh.Lag.P50)
				lag99 = max(lag99, r.direct.Lag.P99, r.mesh.Lag.P99)
			}
		}
		fmt.Fprintf(&b, "at %v/s, the generator's lag from schedule to send (worst run): p50 %s ms, p99 %s ms\n", rate, ms(lag50), ms(lag99))
	}
	b.WriteString("\n")
	b.WriteString("| RPS | run | direct p50 / p90 / p99 ms | sidecars p50 / p90 / p99 ms | added p50 / p90 / p99 ms | answered RPS direct / sidecars | CPU client / server sidecar | RSS client / server MiB | load average |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range runs {
		b.WriteString(runLine(r) + "\n")
	}
	b.WriteString("\nMedian (range) over the runs:\n\n")
	b.WriteString("| RPS | added p50 ms | added p90 ms | added p99 ms | CPU client sidecar | CPU server sidecar | vCPU per 1000 RPS client / server | RSS client / server MiB | anonymous RSS client / server MiB | memory_allocated client / server MiB |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, rate := range cfg.rates {
		b.WriteString(summaryLine(runs, rate) + "\n")
	}
	return b.String()
}

// summaryLine is the median and range over the runs at rate.
func summaryLine(runs []hopRun, rate float64) string {
	var col [13][]float64
	for _, r := range runs {
		if r.rate != rate {
			continue
		}
		a := added(r)
		perK := 1000 / max(achieved(r.mesh), 1)
		for i, v := range []float64{
			float64(a.P50) / 1e6, float64(a.P90) / 1e6, float64(a.P99) / 1e6, 100 * r.client.cores, 100 * r.server.cores,
			r.client.cores * perK, r.server.cores * perK,
			mib(r.client.rss), mib(r.server.rss), mib(r.client.anon), mib(r.server.anon),
			mib(r.client.allocated), mib(r.server.allocated),
		} {
			col[i] = append(col[i], v)
		}
	}
	return fmt.Sprintf("| %v | %s | %s | %s | %s | %s | %s / %s | %s / %s | %s / %s | %s / %s |", rate,
		spread(col[0], "%.2f"), spread(col[1], "%.2f"), spread(col[2], "%.2f"),
		spread(col[3], "%.0f%%"), spread(col[4], "%.0f%%"), spread(col[5], "%.2f"), spread(col[6], "%.2f"),
		spread(col[7], "%.1f"), spread(col[8], "%.1f"), spread(col[9], "%.1f"), spread(col[10], "%.1f"),
		spread(col[11], "%.1f"), spread(col[12], "%.1f"))
}
