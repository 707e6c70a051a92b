// Package debugapi is the wire format of the operator's debug endpoint
// (xds/debug) that capstanctl proxy-status and proxy-config read through the
// API server's service proxy: paths, the token header and the JSON
// documents. It is a leaf (standard library only), so the CLI can share it
// without reaching Envoy types or the xDS server.
package debugapi

import (
	"encoding/json"
	"time"
)

// The debug Service and port: capstanctl reaches the endpoint at
// /api/v1/namespaces/<operator namespace>/services/https:capstan-debug:15014/proxy/<path>.
const (
	ServiceName = "capstan-debug"
	Port        = 15014
	// PortName is the Service's port name (the API server's service
	// proxy looks the endpoint up by it).
	PortName = "https-debug"
)

// Paths served by the endpoint.
const (
	// PathProxies answers ProxyList. Query: namespace (optional).
	PathProxies = "/debug/v1/proxies"
	// PathConfig answers Config. Query: namespace, pod, type (a TypeName).
	PathConfig = "/debug/v1/config"
)

// TokenHeader carries the caller's bearer token. The API server's service
// proxy authenticates the user and then removes the Authorization header,
// so capstanctl sends the token again in this header; the endpoint reviews
// it (TokenReview) and authorizes the user (SubjectAccessReview).
const TokenHeader = "X-Capstan-Token"

// The virtual resource the endpoint authorizes callers for: verb get on
// proxies/status (proxy-status) and proxies/config (proxy-config) in the
// pod's namespace, or in every namespace when none is asked for.
const (
	Group             = "mesh.capstan.dev"
	ResourceProxies   = "proxies"
	SubresourceStatus = "status"
	SubresourceConfig = "config"
)

// Type names of proxy-config, one per xDS resource type.
const (
	TypeListeners = "listeners"
	TypeRoutes    = "routes"
	TypeClusters  = "clusters"
	TypeEndpoints = "endpoints"
	TypeSecrets   = "secrets"
)

// TypeNames lists the xDS types proxy-status shows, in order.
var TypeNames = []string{TypeListeners, TypeRoutes, TypeClusters, TypeEndpoints, TypeSecrets}

// Sync states of one resource type of one proxy.
const (
	// StateSynced: the proxy ACKed the version the control plane serves it.
	StateSynced = "SYNCED"
	// StateNack: the proxy's latest answer was a NACK.
	StateNack = "NACK"
	// StateStale: a newer version is served than the proxy ACKed (sent
	// and not yet answered, or not yet asked for).
	StateStale = "STALE"
	// StateNotSent: the proxy never asked for this type.
	StateNotSent = "NOT SENT"
)

// ProxyList is the answer of PathProxies.
type ProxyList struct {
	Proxies []Proxy `json:"proxies"`
}

// Proxy is one xDS client known to the control plane.
type Proxy struct {
	// Node is the xDS node ID.
	Node string `json:"node"`
	// Kind is the node ID's first field: sidecar or grpc.
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Pod       string `json:"pod,omitempty"`
	// Streams is the number of open xDS streams; 0 means disconnected
	// (config is still held for it).
	Streams int `json:"streams"`
	// Version is the capstan.dev/version node metadata (the injector's).
	Version string      `json:"version,omitempty"`
	Types   []TypeState `json:"types"`
}

// TypeState is one resource type's exchange with one proxy.
type TypeState struct {
	// Type is a TypeName; TypeURL the full type URL.
	Type    string `json:"type"`
	TypeURL string `json:"typeURL"`
	State   string `json:"state"`
	// Served is the version the control plane serves now, Sent the last
	// version sent on a stream, Acked the last version the proxy ACKed.
	Served string `json:"served,omitempty"`
	Sent   string `json:"sent,omitempty"`
	Acked  string `json:"acked,omitempty"`
	// LastNack is the latest NACK, kept after later ACKs.
	LastNack *Nack `json:"lastNack,omitempty"`
}

// Nack is a response the proxy rejected, in its own words.
type Nack struct {
	Version string    `json:"version,omitempty"`
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

// Config is the answer of PathConfig: the resources of one type the
// control plane serves one proxy.
type Config struct {
	Node    string `json:"node"`
	Type    string `json:"type"`
	Version string `json:"version"`
	// Columns name the Summary cells of each resource, for a table.
	Columns   []string   `json:"columns"`
	Resources []Resource `json:"resources"`
}

// Resource is one xDS resource: its Envoy JSON (proto3 JSON mapping, with
// "@type"), with every private key removed from secrets.
type Resource struct {
	Name    string          `json:"name"`
	Version string          `json:"version"`
	Summary []string        `json:"summary"`
	Config  json.RawMessage `json:"config"`
}

// Error is the JSON body of a refused request.
type Error struct {
	Status  int    `json:"status"`
	Message string `json:"message"`
}
