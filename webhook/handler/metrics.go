package handler

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// InjectionDurationMetric is the histogram of the pod webhook's own
// handling: from the decoded AdmissionRequest to the finished response
// (decode the Pod, read Namespace and Mesh, Inject, build the JSON patch).
// It leaves out TLS, HTTP and the AdmissionReview envelope, which
// controller-runtime's controller_runtime_webhook_latency_seconds includes.
const InjectionDurationMetric = "capstan_injection_duration_seconds"

// InjectionCPUMetric is the histogram of the CPU time the same handling
// uses: what InjectionDurationMetric measures, less any time the request
// waited for a CPU. The two differ when the operator's CPUs are busy. It is
// observed only while CPU accounting is on (SetCPUAccounting).
const InjectionCPUMetric = "capstan_injection_cpu_seconds"

// cpuAccounting turns the thread CPU clock on for every request.
var cpuAccounting atomic.Bool

// SetCPUAccounting turns the measurement of InjectionCPUMetric on or off
// (off by default). It pins each request's goroutine to its thread while it
// runs and reads the thread's CPU clock twice; in a burst of 100 pods on 2
// CPUs that cost was lost in the noise (docs/benchmarks.md), but it is a
// diagnosis tool, so it stays off unless asked for.
func SetCPUAccounting(on bool) { cpuAccounting.Store(on) }

// injectionBuckets suit both histograms: the handling takes a fraction of a
// millisecond; the wall time under CPU pressure can reach tens.
var injectionBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
}

// injectionDuration is labelled by outcome: injected, skipped, denied or error.
var injectionDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
	Name:    InjectionDurationMetric,
	Help:    "Time the Pod injection webhook spends on one request, by outcome.",
	Buckets: injectionBuckets,
}, []string{"outcome"})

var injectionCPU = prometheus.NewHistogramVec(prometheus.HistogramOpts{
	Name:    InjectionCPUMetric,
	Help:    "CPU time the Pod injection webhook uses for one request (Linux), by outcome.",
	Buckets: injectionBuckets,
}, []string{"outcome"})

func init() {
	metrics.Registry.MustRegister(injectionDuration, injectionCPU)
}

// Outcomes of a Pod admission, the label of InjectionDurationMetric.
const (
	OutcomeInjected = "injected"
	OutcomeSkipped  = "skipped"
	OutcomeDenied   = "denied"
	OutcomeError    = "error"
)

func observeInjection(start time.Time, cpu cpuClock, outcome string) {
	injectionDuration.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
	if used, ok := cpu.stop(); ok {
		injectionCPU.WithLabelValues(outcome).Observe(used.Seconds())
	}
}
