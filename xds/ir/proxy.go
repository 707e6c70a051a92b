package ir

import "slices"

// MTLSMode is the mTLS mode of an inbound port, or the mesh-wide default.
type MTLSMode string

// mTLS modes.
const (
	MTLSStrict     MTLSMode = "STRICT"
	MTLSPermissive MTLSMode = "PERMISSIVE"
	MTLSDisable    MTLSMode = "DISABLE"
)

// ProxyKind says which generator serves a proxy.
type ProxyKind string

// Proxy kinds.
const (
	// ProxySidecar is an injected Envoy sidecar.
	ProxySidecar ProxyKind = "Sidecar"
	// ProxyGRPC is a proxyless gRPC client.
	ProxyGRPC ProxyKind = "GRPC"
)

// Proxy is one data-plane client: an injected pod's sidecar, or a pod whose
// application is a proxyless gRPC client (Kind ProxyGRPC).
type Proxy struct {
	// ID is the xDS node ID, sidecar~<podIP>~<pod>.<namespace>~<namespace>.svc.cluster.local
	// (grpc~… for a proxyless gRPC client).
	ID        string    `json:"id"`
	Kind      ProxyKind `json:"kind"`
	Name      string    `json:"name"`
	Namespace string    `json:"namespace"`
	IP        string    `json:"ip"`
	// ServiceAccount of the pod.
	ServiceAccount string `json:"serviceAccount"`
	// Identity is spiffe://<trust-domain>/ns/<namespace>/sa/<serviceaccount>.
	Identity string            `json:"identity"`
	Labels   map[string]string `json:"labels,omitempty"`
	// Inbound are the ports the proxy receives traffic on, sorted by port.
	Inbound []*InboundPort `json:"inbound,omitempty"`
	// AppProbes are the application's HTTP health checks that the injector
	// pointed at the proxy's health port, sorted by path; the proxy forwards
	// each to the application in plaintext, so they work under STRICT mTLS.
	AppProbes []*AppProbe `json:"appProbes,omitempty"`
	// Scope is the part of the mesh the sidecar gets outbound config for;
	// nil means every service (docs/scoping.md).
	Scope *Scope `json:"scope,omitempty"`
}

// Scope is the part of the mesh a sidecar gets outbound config for: the
// services it names, and, transitively, the services their routes send or
// mirror to. Anything else the application calls goes through the
// passthrough cluster, without mesh routing.
type Scope struct {
	// Namespaces whose every service is in scope, sorted.
	Namespaces []string `json:"namespaces,omitempty"`
	// Hosts are the FQDNs of other services in scope, sorted.
	Hosts []string `json:"hosts,omitempty"`
}

// Includes reports whether the scope names the service (its namespace or its FQDN).
func (s *Scope) Includes(svc *Service) bool {
	if s == nil {
		return true
	}
	_, ns := slices.BinarySearch(s.Namespaces, svc.Namespace)
	_, host := slices.BinarySearch(s.Hosts, svc.FQDN)
	return ns || host
}

// AppProbe is one rewritten HTTP probe.
type AppProbe struct {
	// Path the kubelet now asks the proxy for, /app-health/<container>/<kind>.
	Path string `json:"path"`
	// Port and TargetPath are where the application answers the probe.
	Port       uint32 `json:"port"`
	TargetPath string `json:"targetPath"`
	// Headers the probe sends, in the pod's order.
	Headers []*Header `json:"headers,omitempty"`
}

// InboundPort is one port of the workload served through the proxy.
type InboundPort struct {
	// Port is the container port the application listens on.
	Port     uint32   `json:"port"`
	Protocol Protocol `json:"protocol"`
	// MTLS is the effective mode after PeerAuthentication precedence.
	MTLS MTLSMode `json:"mtls"`
	// Services lists "namespace/name:port" of the services that target this port, sorted.
	Services []string `json:"services,omitempty"`
}

// SidecarNodeID builds the node ID of a pod's sidecar.
func SidecarNodeID(podIP, pod, namespace string) string {
	return "sidecar~" + podIP + "~" + pod + "." + namespace + "~" + namespace + ".svc.cluster.local"
}

// GRPCNodeID builds the node ID of a pod's proxyless gRPC client.
func GRPCNodeID(podIP, pod, namespace string) string {
	return "grpc~" + podIP + "~" + pod + "." + namespace + "~" + namespace + ".svc.cluster.local"
}

// SpiffeID builds a workload identity.
func SpiffeID(trustDomain, namespace, serviceAccount string) string {
	return "spiffe://" + trustDomain + "/ns/" + namespace + "/sa/" + serviceAccount
}
