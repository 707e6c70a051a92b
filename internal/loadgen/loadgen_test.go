package loadgen

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// Every scheduled request of the measured part is sent once and counted;
// the warm-up's are sent and not counted.
func TestRunSendsTheSchedule(t *testing.T) {
	var sent atomic.Int64
	res, err := Run(t.Context(), Config{Rate: 1000, Warmup: 50 * time.Millisecond, Duration: 200 * time.Millisecond, Workers: 4},
		func(context.Context) error { sent.Add(1); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if res.Scheduled != 200 || res.OK != 200 || res.Errors != 0 {
		t.Errorf("scheduled %d, ok %d, errors %d; want 200, 200, 0", res.Scheduled, res.OK, res.Errors)
	}
	if got := sent.Load(); got != 250 {
		t.Errorf("sent %d requests, want 250 (warm-up included)", got)
	}
	if res.Latency.Max < res.Service.Max || res.Latency.P50 <= 0 || res.Latency.P50 > res.Latency.P99 {
		t.Errorf("latency %+v, service %+v: want 0 < p50 <= p99 and latency >= service", res.Latency, res.Service)
	}
}

// A stall delays the requests scheduled behind it, and their latency,
// measured from the schedule, counts the wait: with one worker and a
// 100 ms stall on the first of 100 requests 5 ms apart, the 19 requests
// scheduled during the stall wait 5–95 ms each, so the 90th percentile is
// at least 50 ms. Their service times (from the actual send) do not show
// it: that is what a closed-loop client would report.
func TestRunCountsTheWaitBehindAStall(t *testing.T) {
	var n atomic.Int64
	res, err := Run(t.Context(), Config{Rate: 200, Duration: 500 * time.Millisecond, Workers: 1},
		func(context.Context) error {
			if n.Add(1) == 1 {
				time.Sleep(100 * time.Millisecond)
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 100 {
		t.Fatalf("ok %d, want 100", res.OK)
	}
	if res.Latency.P90 < 50*time.Millisecond || res.Latency.Max < 100*time.Millisecond {
		t.Errorf("latency %+v: want p90 >= 50ms and max >= 100ms (the wait behind the stall)", res.Latency)
	}
	if res.Lag.P90 < 45*time.Millisecond {
		t.Errorf("lag %+v: want p90 >= 45ms (requests waited for the worker)", res.Lag)
	}
}

// Failed requests are counted apart, with the first error kept.
func TestRunCountsErrors(t *testing.T) {
	var n atomic.Int64
	boom := errors.New("boom")
	res, err := Run(t.Context(), Config{Rate: 2000, Duration: 100 * time.Millisecond, Workers: 3},
		func(context.Context) error {
			if n.Add(1)%10 == 0 {
				return boom
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if res.Scheduled != 200 || res.Errors != 20 || res.OK != 180 || res.FirstError != "boom" {
		t.Errorf("scheduled %d, ok %d, errors %d (%q); want 200, 180, 20 (boom)", res.Scheduled, res.OK, res.Errors, res.FirstError)
	}
}

func TestRunRefusesABadConfig(t *testing.T) {
	for _, cfg := range []Config{{Duration: time.Second, Workers: 1}, {Rate: 1, Workers: 1}, {Rate: 1, Duration: time.Second}} {
		if _, err := Run(t.Context(), cfg, func(context.Context) error { return nil }); err == nil {
			t.Errorf("Run(%+v) succeeded, want an error", cfg)
		}
	}
}

func TestRunStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := Run(ctx, Config{Rate: 10, Duration: time.Hour, Workers: 1}, func(context.Context) error { return nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run after its context ended: %v, want %v", err, context.DeadlineExceeded)
	}
}

func TestQuantile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i))
	}
	want := Quantiles{P50: 50, P90: 90, P99: 99, P999: 100, Max: 100}
	if got := Quantile(ds); got != want {
		t.Errorf("Quantile(1..100) = %+v, want %+v", got, want)
	}
	if got := Quantile(nil); got != (Quantiles{}) {
		t.Errorf("Quantile(nil) = %+v, want zero", got)
	}
}
