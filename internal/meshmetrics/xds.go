package meshmetrics

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// XDSObserver is what the xDS server tells the metrics: the hook it calls
// on each event (xds/server.Observer has the same methods, so that the
// server imports nothing of this package; internal/app passes XDS()).
// XDS is the one that records to the manager's registry; NewXDS records
// to another (tests).
type XDSObserver interface {
	// ProxyConnected and ProxyDisconnected bracket one proxy's streams
	// (its first opened, its last closed); kind is the proxy kind
	// (Sidecar, GRPC).
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
	// StreamRefused counts an xDS stream (or token exchange) refused by
	// authentication or node-ID binding, by reason.
	StreamRefused(reason string)
	// ConnectionRefused counts a connection to the xDS port closed on
	// accept by the connection caps, by reason.
	ConnectionRefused(reason string)
}

// convergenceBuckets reach the minutes a slow rollout takes.
var convergenceBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

// xdsMetrics is an XDSObserver that records to a registry.
type xdsMetrics struct {
	connected   *prometheus.GaugeVec
	pushes      *prometheus.CounterVec
	nacks       *prometheus.CounterVec
	convergence prometheus.Histogram
	// refusedStreams and refusedConns count refusals by reason.
	refusedStreams *prometheus.CounterVec
	refusedConns   *prometheus.CounterVec
}

func newXDSMetrics() *xdsMetrics {
	m := &xdsMetrics{
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
		refusedStreams: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: AuthFailures, Help: "xDS streams refused by authentication or node-ID binding, by reason.",
		}, []string{"reason"}),
		refusedConns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ConnectionsRefused, Help: "Connections to the xDS port closed on accept because of the connection caps, by reason.",
		}, []string{"reason"}),
	}
	// Kinds and resource types whose series exist from the start (at 0),
	// so that alerts and dashboards see them before the first event.
	for _, k := range proxyKinds {
		m.connected.WithLabelValues(k)
	}
	for _, t := range resourceTypes {
		m.pushes.WithLabelValues(t)
		m.nacks.WithLabelValues(t)
	}
	return m
}

func (m *xdsMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.connected, m.pushes, m.nacks, m.convergence, m.refusedStreams, m.refusedConns}
}

var xds = newXDSMetrics()

// XDS is the XDSObserver that records to the manager's registry.
func XDS() XDSObserver { return xds }

// NewXDS returns an XDSObserver recording the same series to reg, so that
// a test reads only its own server's events.
func NewXDS(reg prometheus.Registerer) (XDSObserver, error) {
	m := newXDSMetrics()
	for _, c := range m.collectors() {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering the xDS metrics: %w", err)
		}
	}
	return m, nil
}

func (m *xdsMetrics) ProxyConnected(kind string)    { m.connected.WithLabelValues(kind).Inc() }
func (m *xdsMetrics) ProxyDisconnected(kind string) { m.connected.WithLabelValues(kind).Dec() }
func (m *xdsMetrics) Pushed(resourceType string)    { m.pushes.WithLabelValues(resourceType).Inc() }
func (m *xdsMetrics) NACKed(resourceType string)    { m.nacks.WithLabelValues(resourceType).Inc() }
func (m *xdsMetrics) Converged(d time.Duration)     { m.convergence.Observe(d.Seconds()) }
func (m *xdsMetrics) StreamRefused(reason string)   { m.refusedStreams.WithLabelValues(reason).Inc() }
func (m *xdsMetrics) ConnectionRefused(reason string) {
	m.refusedConns.WithLabelValues(reason).Inc()
}

// DeclareRefusalReasons makes the refusal series of the manager's
// registry exist (at 0) for every reason the server may give, so that
// alerts and dashboards see them before the first refusal. internal/app
// passes the server's lists.
func DeclareRefusalReasons(stream, connection []string) {
	for _, r := range stream {
		xds.refusedStreams.WithLabelValues(r)
	}
	for _, r := range connection {
		xds.refusedConns.WithLabelValues(r)
	}
}

// Proxy kinds and resource types (xds/server's labels).
var (
	proxyKinds    = []string{"Sidecar", "GRPC"}
	resourceTypes = []string{"Cluster", "ClusterLoadAssignment", "Listener", "RouteConfiguration", "Secret", "Other"}
)
