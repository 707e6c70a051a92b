package meshmetrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// XDSObserver is what the xDS server tells the metrics: the hook it calls
// on each event, so that the server depends on this interface only.
// XDS is the one that records to the registry; tests may pass their own.
// Refused streams are counted by the server already, by reason:
// capstan_xds_auth_failures_total and capstan_xds_connections_refused_total.
type XDSObserver interface {
	// ProxyConnected and ProxyDisconnected bracket one proxy's stream;
	// kind is the proxy kind (Sidecar, GRPC).
	ProxyConnected(kind string)
	ProxyDisconnected(kind string)
	// Pushed counts one response sent, by resource type (its short name:
	// Cluster, Listener, RouteConfiguration, ClusterLoadAssignment, Secret).
	Pushed(resourceType string)
	// NACKed counts one response a proxy rejected.
	NACKed(resourceType string)
	// Converged records, for one change, the time from the change being
	// observed to every affected proxy having ACKed it.
	Converged(d time.Duration)
}

// convergenceBuckets reach the minutes a slow rollout takes.
var convergenceBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

// xdsMetrics is the registry's XDSObserver.
type xdsMetrics struct {
	connected   *prometheus.GaugeVec
	pushes      *prometheus.CounterVec
	nacks       *prometheus.CounterVec
	convergence prometheus.Histogram
}

var xds = &xdsMetrics{
	connected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: ConnectedProxies, Help: "Proxies with an open xDS stream, by kind.",
	}, []string{"kind"}),
	pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: Pushes, Help: "xDS responses sent, by resource type.",
	}, []string{"type"}),
	nacks: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NACKs, Help: "xDS responses proxies rejected, by resource type.",
	}, []string{"type"}),
	convergence: prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: Convergence, Buckets: convergenceBuckets,
		Help: "Time from a change observed to every affected proxy having ACKed the config it caused.",
	}),
}

// XDS is the XDSObserver that records to the manager's registry.
func XDS() XDSObserver { return xds }

func (m *xdsMetrics) ProxyConnected(kind string)    { m.connected.WithLabelValues(kind).Inc() }
func (m *xdsMetrics) ProxyDisconnected(kind string) { m.connected.WithLabelValues(kind).Dec() }
func (m *xdsMetrics) Pushed(resourceType string)    { m.pushes.WithLabelValues(resourceType).Inc() }
func (m *xdsMetrics) NACKed(resourceType string)    { m.nacks.WithLabelValues(resourceType).Inc() }
func (m *xdsMetrics) Converged(d time.Duration)     { m.convergence.Observe(d.Seconds()) }

// Kinds and resource types whose series exist from the start (at 0), so
// that alerts and dashboards see them before the first event.
var (
	proxyKinds    = []string{"Sidecar", "GRPC"}
	resourceTypes = []string{"Cluster", "ClusterLoadAssignment", "Listener", "RouteConfiguration", "Secret"}
)

func init() {
	for _, k := range proxyKinds {
		xds.connected.WithLabelValues(k)
	}
	for _, t := range resourceTypes {
		xds.pushes.WithLabelValues(t)
		xds.nacks.WithLabelValues(t)
	}
}
