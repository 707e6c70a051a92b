package generate

import "strconv"

// SDS secret names. The secrets themselves are served by the SDS generator;
// this package only references them, over ADS.
const (
	// SecretWorkloadCert is the workload's certificate and key.
	SecretWorkloadCert = "default"
	// SecretRootCA is the trust bundle that peers are verified against.
	SecretRootCA = "ROOTCA"
)

// Well-known ports of the sidecar (see DESIGN.md, "Proxy conventions").
const (
	PortAdmin           uint32 = 15000
	PortOutboundCapture uint32 = 15001
	PortInboundCapture  uint32 = 15006
	PortReadiness       uint32 = 15021
	PortPrometheus      uint32 = 15090
)

// Names of the fixed listeners and clusters.
const (
	ListenerVirtualOutbound = "virtualOutbound"
	ListenerVirtualInbound  = "virtualInbound"
	ListenerPrometheus      = "prometheus"
	ListenerReadiness       = "readiness"

	// ClusterPassthrough forwards outbound traffic for destinations outside the mesh.
	ClusterPassthrough = "PassthroughCluster"
	// ClusterInboundPassthrough forwards inbound traffic for ports the proxy does not know.
	ClusterInboundPassthrough = "InboundPassthroughCluster"
	// ClusterAdmin is Envoy's own admin endpoint on 127.0.0.1:15000.
	ClusterAdmin = "admin"
)

// Envoy extension names used in typed configs.
const (
	filterHCM             = "envoy.filters.network.http_connection_manager"
	filterTCPProxy        = "envoy.filters.network.tcp_proxy"
	filterFault           = "envoy.filters.http.fault"
	filterRouter          = "envoy.filters.http.router"
	listenerTLSInspector  = "envoy.filters.listener.tls_inspector"
	listenerOriginalDst   = "envoy.filters.listener.original_dst"
	transportSocketTLS    = "envoy.transport_sockets.tls"
	httpProtocolOptionsID = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
)

// reservedPorts are the sidecar's own ports; services on them get no outbound listener.
var reservedPorts = map[uint32]bool{
	PortAdmin: true, PortOutboundCapture: true, PortInboundCapture: true,
	15020: true, PortReadiness: true, PortPrometheus: true,
}

// clusterName is ir.ClusterName without fmt, "outbound|<port>|<subset>|<fqdn>"
// (a test keeps the two equal).
func clusterName(fqdn string, port uint32, subset string) string {
	return string(appendClusterName(nil, fqdn, port, subset))
}

// appendClusterName appends clusterName(fqdn, port, subset) to b.
func appendClusterName(b []byte, fqdn string, port uint32, subset string) []byte {
	b = strconv.AppendUint(append(b, "outbound|"...), uint64(port), 10)
	return append(append(append(append(b, '|'), subset...), '|'), fqdn...)
}

// OutboundListenerName is the name of the outbound listener of a service port, "0.0.0.0_<port>".
func OutboundListenerName(port uint32) string {
	return "0.0.0.0_" + strconv.FormatUint(uint64(port), 10)
}

// RouteConfigName is the name of the outbound route configuration of a port, "<port>".
func RouteConfigName(port uint32) string { return strconv.FormatUint(uint64(port), 10) }

// ProbeClusterName is the plain HTTP/1.1 cluster that the health listener
// forwards an application's rewritten probes on port to, "probe|<port>".
func ProbeClusterName(port uint32) string {
	return "probe|" + strconv.FormatUint(uint64(port), 10)
}

// InboundClusterName is the cluster for an inbound port, "inbound|<port>||".
func InboundClusterName(port uint32) string {
	return "inbound|" + strconv.FormatUint(uint64(port), 10) + "||"
}
