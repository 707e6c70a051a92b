package server

import (
	"strings"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// Observer is told of the server's events, for metrics; the manager passes
// internal/meshmetrics.XDS() (through internal/app), so that this package
// depends on the interface only. Its methods are called on the streams'
// goroutines, some under the tracker's lock: they must be quick and must
// not call back into the server.
type Observer interface {
	// ProxyConnected and ProxyDisconnected bracket a node's streams: its
	// first opened (the stream's first request naming it) and its last
	// closed. kind is ProxyKindSidecar or ProxyKindGRPC.
	ProxyConnected(kind string)
	ProxyDisconnected(kind string)
	// Pushed counts one response sent, by short resource type (shortType).
	Pushed(resourceType string)
	// NACKed counts one response a node rejected, by short resource type.
	NACKed(resourceType string)
	// Converged records, for one change (TrackConvergence), the time from
	// the change being observed to every affected node having ACKed it.
	Converged(d time.Duration)
	// StreamRefused counts an xDS stream, unary call or token exchange
	// refused by authentication or node-ID binding, by reason (one of
	// StreamRefusalReasons).
	StreamRefused(reason string)
	// ConnectionRefused counts a connection closed on accept by the
	// connection caps, by reason (one of ConnectionRefusalReasons).
	ConnectionRefused(reason string)
}

// Proxy kinds, the label Observer is given.
const (
	ProxyKindSidecar = "Sidecar"
	ProxyKindGRPC    = "GRPC"
)

// otherType is the short type of a type URL the server does not serve.
const otherType = "Other"

// nopObserver is the Observer of a server given none.
type nopObserver struct{}

func (nopObserver) ProxyConnected(string)    {}
func (nopObserver) ProxyDisconnected(string) {}
func (nopObserver) Pushed(string)            {}
func (nopObserver) NACKed(string)            {}
func (nopObserver) Converged(time.Duration)  {}
func (nopObserver) StreamRefused(string)     {}
func (nopObserver) ConnectionRefused(string) {}

// proxyKind is the Observer kind of a node ID: proxyless gRPC clients
// (grpc~), and sidecars (every other node, as the caches classify them).
func proxyKind(nodeID string) string {
	if isProxylessID(nodeID) {
		return ProxyKindGRPC
	}
	return ProxyKindSidecar
}

// servedTypes are the type URLs the server serves.
var servedTypes = map[string]bool{
	resourcev3.ClusterType: true, resourcev3.EndpointType: true, resourcev3.ListenerType: true,
	resourcev3.RouteType: true, resourcev3.SecretType: true,
}

// shortType is a type URL's message name (Cluster, ClusterLoadAssignment,
// Listener, RouteConfiguration, Secret), otherType for a type URL the
// server does not serve: a NACK's type URL is the client's, and must not
// make a label value of its choice.
func shortType(typeURL string) string {
	if !servedTypes[typeURL] {
		return otherType
	}
	return typeURL[strings.LastIndexByte(typeURL, '.')+1:]
}
