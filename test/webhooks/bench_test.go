package webhooks

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/webhook/handler"
)

const concurrentPods = 100

// BenchmarkConcurrentPodCreation creates 100 pods at once in an enabled
// namespace through the real API server and webhook, and reports the
// end-to-end create latency (p50, p99) and the webhook's own handling time
// from controller-runtime's webhook latency histogram (mean, and the share
// of requests handled within 5 ms), and the handler's own time from
// handler.InjectionDurationMetric (mean, and bucket bounds of p50 and p99)
// and its CPU time from handler.InjectionCPUMetric (mean, p99 bound).
func BenchmarkConcurrentPodCreation(b *testing.B) {
	for _, accounting := range []bool{false, true} {
		b.Run(fmt.Sprintf("cpu-accounting=%v", accounting), func(b *testing.B) {
			handler.SetCPUAccounting(accounting)
			defer handler.SetCPUAccounting(false)
			benchmarkConcurrentPodCreation(b)
		})
	}
}

func benchmarkConcurrentPodCreation(b *testing.B) {
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-",
		Labels: map[string]string{meshv1alpha1.LabelInject: meshv1alpha1.InjectEnabled}}}
	if err := env.Client.Create(ctx, ns); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = env.Client.Delete(ctx, ns) })
	c := unthrottledClient(b)
	// One burst first, unmeasured: the webhook's first requests wait for the
	// manager's informers (Namespace, Mesh) to start and sync, and TLS
	// connections to be made; that is start-up cost, not handling.
	createConcurrently(b, c, ns.Name)
	countBefore, sumBefore, fastBefore := webhookLatency(b)
	handleBefore := injectionHistogram(b, handler.InjectionDurationMetric)
	cpuBefore := injectionHistogram(b, handler.InjectionCPUMetric)
	var latencies []time.Duration
	for b.Loop() {
		latencies = append(latencies, createConcurrently(b, c, ns.Name)...)
	}
	count, sum, fast := webhookLatency(b)
	slices.Sort(latencies)
	b.ReportMetric(float64(percentile(latencies, 50).Microseconds())/1000, "create-p50-ms")
	b.ReportMetric(float64(percentile(latencies, 99).Microseconds())/1000, "create-p99-ms")
	if n := count - countBefore; n > 0 {
		b.ReportMetric((sum-sumBefore)/float64(n)*1000, "webhook-mean-ms")
		b.ReportMetric(float64(fast-fastBefore)/float64(n)*100, "webhook-within-5ms-%")
	}
	handle := injectionHistogram(b, handler.InjectionDurationMetric).minus(handleBefore)
	cpu := injectionHistogram(b, handler.InjectionCPUMetric).minus(cpuBefore)
	if cpu.count > 0 {
		b.ReportMetric(cpu.quantileBound(0.99)*1000, "cpu-p99-le-ms")
		b.ReportMetric(cpu.sum/float64(cpu.count)*1000, "cpu-mean-ms")
	}
	if handle.count > 0 {
		b.ReportMetric(handle.quantileBound(0.50)*1000, "handle-p50-le-ms")
		b.ReportMetric(handle.quantileBound(0.99)*1000, "handle-p99-le-ms")
		b.ReportMetric(handle.sum/float64(handle.count)*1000, "handle-mean-ms")
		b.ReportMetric(handle.within(0.005)*100, "handle-within-5ms-%")
	}
}

// unthrottledClient lifts client-go's default rate limit, which would
// otherwise queue the concurrent creations on the client side.
func unthrottledClient(b *testing.B) client.Client {
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 1000, 1000
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func createConcurrently(b *testing.B, c client.Client, ns string) []time.Duration {
	out := make([]time.Duration, concurrentPods)
	var wg sync.WaitGroup
	for i := range concurrentPods {
		wg.Go(func() {
			pod := newPod(ns, nil, nil)
			start := time.Now()
			err := c.Create(context.Background(), pod)
			out[i] = time.Since(start)
			if err != nil {
				b.Error(err)
				return
			}
			if !slices.ContainsFunc(pod.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == meshv1alpha1.ProxyContainerName }) {
				b.Errorf("pod %s was not injected", pod.Name)
			}
		})
	}
	wg.Wait()
	return out
}

// webhookLatency reads the pod webhook's latency histogram: count, sum in
// seconds, and how many observations fell within 5 ms.
func webhookLatency(b *testing.B) (count uint64, sum float64, fast uint64) {
	families, err := metrics.Registry.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "controller_runtime_webhook_latency_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			if webhookLabel(m) != handler.PathMutatePod {
				continue
			}
			h := m.GetHistogram()
			count, sum = h.GetSampleCount(), h.GetSampleSum()
			for _, bucket := range h.GetBucket() {
				if bucket.GetUpperBound() <= 0.005 {
					fast = bucket.GetCumulativeCount()
				}
			}
		}
	}
	return count, sum, fast
}

func webhookLabel(m *dto.Metric) string { return label(m, "webhook") }

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return strings.TrimSpace(l.GetValue())
		}
	}
	return ""
}

func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[(len(sorted)-1)*p/100]
}

// histogram is a snapshot of one of the injection webhook's histograms
// (handler.InjectionDurationMetric or InjectionCPUMetric, outcome
// injected): cumulative counts by upper bound in seconds.
type histogram struct {
	count  uint64
	sum    float64
	bounds []float64
	counts []uint64
}

func injectionHistogram(b *testing.B, name string) histogram {
	families, err := metrics.Registry.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if label(m, "outcome") != handler.OutcomeInjected {
				continue
			}
			h := histogram{count: m.GetHistogram().GetSampleCount(), sum: m.GetHistogram().GetSampleSum()}
			for _, bucket := range m.GetHistogram().GetBucket() {
				h.bounds = append(h.bounds, bucket.GetUpperBound())
				h.counts = append(h.counts, bucket.GetCumulativeCount())
			}
			return h
		}
	}
	return histogram{}
}

// minus is what was observed since before.
func (h histogram) minus(before histogram) histogram {
	out := histogram{count: h.count - before.count, sum: h.sum - before.sum, bounds: h.bounds}
	for i, c := range h.counts {
		if i < len(before.counts) {
			c -= before.counts[i]
		}
		out.counts = append(out.counts, c)
	}
	return out
}

// within is the share of observations that took at most bound seconds
// (bound must be a bucket bound).
func (h histogram) within(bound float64) float64 {
	for i, b := range h.bounds {
		if b == bound {
			return float64(h.counts[i]) / float64(h.count)
		}
	}
	return math.NaN()
}

// quantileBound is the smallest bucket bound that at least q of the
// observations fall within (an upper bound of the q-quantile).
func (h histogram) quantileBound(q float64) float64 {
	for i, c := range h.counts {
		if float64(c) >= q*float64(h.count) {
			return h.bounds[i]
		}
	}
	return math.Inf(1)
}
