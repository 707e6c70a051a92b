// Package loadgen is an open-loop load generator: it sends requests on a
// fixed schedule (Rate per second) whatever the answers do, and measures
// each request's latency from the time it was scheduled to be sent, not
// from the time it was sent. A request that waits for a busy worker, or
// behind a stall, counts that wait: the measurement has no coordinated
// omission (a closed-loop client, which sends the next request only when
// the previous one is answered, sends fewer requests during a stall and
// hides it).
//
// It knows nothing of HTTP: the caller's Do sends one request. The
// benchmark of a sidecar hop (test/dataplane, `make bench-hop`) runs it
// inside a pod through internal/netpod's http-rate app.
package loadgen

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Config is one run.
type Config struct {
	// Rate is how many requests are scheduled per second.
	Rate float64
	// Warmup is sent at Rate first and not measured; Duration is then
	// measured.
	Warmup, Duration time.Duration
	// Workers bounds the requests in flight at once (one connection each
	// for a keep-alive HTTP client); requests scheduled while all are busy
	// wait, and their latency counts the wait.
	Workers int
}

// Quantiles of a set of durations.
type Quantiles struct {
	P50  time.Duration `json:"p50"`
	P90  time.Duration `json:"p90"`
	P99  time.Duration `json:"p99"`
	P999 time.Duration `json:"p999"`
	Max  time.Duration `json:"max"`
}

// Result is what a run measured (its measured part only).
type Result struct {
	// Scheduled requests of the measured part; OK of them succeeded and
	// Errors failed (FirstError is one of the failures).
	Scheduled  int    `json:"scheduled"`
	OK         int    `json:"ok"`
	Errors     int    `json:"errors"`
	FirstError string `json:"firstError,omitempty"`
	// Latency is from each successful request's scheduled send time to
	// its answer (the figure to report); Service from its actual send
	// time; Lag from its scheduled to its actual send time (the
	// generator's own timer and the wait for a worker).
	Latency Quantiles `json:"latency"`
	Service Quantiles `json:"service"`
	Lag     Quantiles `json:"lag"`
	// Elapsed is the measured part's wall time, first schedule to last answer.
	Elapsed time.Duration `json:"elapsed"`
}

// job is one scheduled request.
type job struct {
	at       time.Time
	measured bool
}

// sample is one answered request.
type sample struct {
	latency, service, lag time.Duration
	end                   time.Time
	err                   error
}

// Run sends Rate requests per second with do for Warmup plus Duration and
// returns the measured part. do gets ctx and must return when it ends.
func Run(ctx context.Context, cfg Config, do func(context.Context) error) (Result, error) {
	if cfg.Rate <= 0 || cfg.Duration <= 0 || cfg.Workers <= 0 || cfg.Warmup < 0 {
		return Result{}, fmt.Errorf("loadgen: rate %v, duration %v, warmup %v and workers %d must be positive",
			cfg.Rate, cfg.Duration, cfg.Warmup, cfg.Workers)
	}
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	warm := int(cfg.Warmup / interval)
	total := warm + int(cfg.Duration/interval)
	// The queue holds every request: the schedule never waits for a worker.
	jobs := make(chan job, total)
	samples := make([][]sample, cfg.Workers)
	var wg sync.WaitGroup
	for w := range cfg.Workers {
		wg.Go(func() { samples[w] = work(ctx, jobs, do) })
	}
	start := time.Now()
	schedule(ctx, start, interval, total, warm, jobs)
	close(jobs)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("loadgen: %w", err)
	}
	return summarise(slices.Concat(samples...), start.Add(time.Duration(warm)*interval)), nil
}

// schedule queues request i at start + i×interval, sleeping between them.
func schedule(ctx context.Context, start time.Time, interval time.Duration, total, warm int, jobs chan<- job) {
	s := newSleeper()
	defer s.close()
	for i := range total {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			s.sleep(d)
		}
		if ctx.Err() != nil {
			return
		}
		jobs <- job{at: at, measured: i >= warm}
	}
}

// work sends the queued requests one at a time and keeps the measured ones.
func work(ctx context.Context, jobs <-chan job, do func(context.Context) error) []sample {
	var out []sample
	for j := range jobs {
		sent := time.Now()
		err := do(ctx)
		end := time.Now()
		if j.measured {
			out = append(out, sample{latency: end.Sub(j.at), service: end.Sub(sent), lag: sent.Sub(j.at), end: end, err: err})
		}
	}
	return out
}

func summarise(samples []sample, from time.Time) Result {
	r := Result{Scheduled: len(samples)}
	var lat, svc, lag []time.Duration
	last := from
	for _, s := range samples {
		if s.end.After(last) {
			last = s.end
		}
		if s.err != nil {
			r.Errors++
			if r.FirstError == "" {
				r.FirstError = s.err.Error()
			}
			continue
		}
		r.OK++
		lat, svc, lag = append(lat, s.latency), append(svc, s.service), append(lag, s.lag)
	}
	r.Latency, r.Service, r.Lag = Quantile(lat), Quantile(svc), Quantile(lag)
	r.Elapsed = last.Sub(from)
	return r
}

// Quantile returns the quantiles of ds (nearest rank); it sorts ds. The
// zero Quantiles when ds is empty.
func Quantile(ds []time.Duration) Quantiles {
	if len(ds) == 0 {
		return Quantiles{}
	}
	slices.Sort(ds)
	rank := func(q float64) time.Duration {
		i := int(q*float64(len(ds))+0.999999999) - 1
		return ds[min(max(i, 0), len(ds)-1)]
	}
	return Quantiles{P50: rank(0.50), P90: rank(0.90), P99: rank(0.99), P999: rank(0.999), Max: ds[len(ds)-1]}
}
