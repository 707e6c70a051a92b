// Package meshmetrics holds the control plane's Prometheus metrics that
// more than one package records, registered on controller-runtime's
// registry, which the manager serves on its metrics endpoint (:8080
// /metrics). It imports no Capstan package, so every layer may record.
// docs/observability.md lists every metric and what to watch.
package meshmetrics

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metric names.
const (
	TranslationDuration = "capstan_translation_duration_seconds"
	GenerationDuration  = "capstan_generation_duration_seconds"
	ProxiesGenerated    = "capstan_generated_proxies_total"
	CertificateExpiry   = "capstan_workload_certificate_expiry_timestamp_seconds"
	PodsWithoutSidecar  = "capstan_pods_without_current_sidecar"
	ConnectedProxies    = "capstan_xds_connected_proxies"
	Pushes              = "capstan_xds_pushes_total"
	NACKs               = "capstan_xds_nacks_total"
	Convergence         = "capstan_xds_convergence_seconds"
	AuthFailures        = "capstan_xds_auth_failures_total"
	ConnectionsRefused  = "capstan_xds_connections_refused_total"
)

// pipelineBuckets suit a translation or a generation: under a millisecond
// for a small mesh, seconds for thousands of proxies.
var pipelineBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

var (
	translation = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: TranslationDuration, Buckets: pipelineBuckets,
		Help: "Time one translation of the API objects into the mesh model takes.",
	})
	generation = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: GenerationDuration, Buckets: pipelineBuckets,
		Help: "Time one push spends generating the Envoy config of the proxies whose inputs changed, and publishing it.",
	})
	generated = prometheus.NewCounter(prometheus.CounterOpts{
		Name: ProxiesGenerated,
		Help: "Proxies whose config was generated (a push regenerates only the proxies whose inputs changed).",
	})
	certExpiry = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: CertificateExpiry,
		Help: "When the current workload certificate of an identity expires (Unix seconds).",
	}, []string{"identity"})
	podsWithoutSidecar = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: PodsWithoutSidecar,
		Help: "Running pods in injection-enabled namespaces without a sidecar (state uninjected) or with one of another version (state outdated), by namespace.",
	}, []string{"namespace", "state"})
)

func init() {
	metrics.Registry.MustRegister(translation, generation, generated, certExpiry, podsWithoutSidecar)
	metrics.Registry.MustRegister(xds.collectors()...)
}

// ObserveTranslation records one translation.
func ObserveTranslation(d time.Duration) { translation.Observe(d.Seconds()) }

// ObserveGeneration records one push's generation of proxies configs.
func ObserveGeneration(d time.Duration, proxies int) {
	generation.Observe(d.Seconds())
	generated.Add(float64(proxies))
}

// SetCertificateExpiry records the expiry of an identity's current certificate.
func SetCertificateExpiry(identity string, notAfter time.Time) {
	certExpiry.WithLabelValues(identity).Set(float64(notAfter.Unix()))
}

// ForgetCertificate drops an identity that no proxy needs any more.
func ForgetCertificate(identity string) { certExpiry.DeleteLabelValues(identity) }

// Pod states of PodsWithoutSidecar.
const (
	StateUninjected = "uninjected"
	StateOutdated   = "outdated"
)

// SetPodsWithoutSidecar replaces the counts of pods ("namespace/name")
// without a current sidecar; a namespace without such pods has no series.
func SetPodsWithoutSidecar(uninjected, outdated []string) {
	podsWithoutSidecar.Reset()
	for state, pods := range map[string][]string{StateUninjected: uninjected, StateOutdated: outdated} {
		for _, p := range pods {
			ns, _, _ := strings.Cut(p, "/")
			podsWithoutSidecar.WithLabelValues(ns, state).Inc()
		}
	}
}
