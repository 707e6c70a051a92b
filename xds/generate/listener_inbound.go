package generate

import (
	"strconv"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	originaldstv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/original_dst/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// Transport protocols the TLS inspector reports.
const (
	transportTLS       = "tls"
	transportPlaintext = "raw_buffer"
)

var (
	originalDstTypedConfig  = mustPack(&originaldstv3.OriginalDst{})
	tlsInspectorTypedConfig = mustPack(&tlsinspectorv3.TlsInspector{})
)

// inbound adds the capture listener on 15006 with chains per inbound port, a
// STATIC cluster per port, and the passthrough for ports not listed.
func (b *builder) inbound() {
	l := &listenerv3.Listener{
		Name:                             ListenerVirtualInbound,
		Address:                          socketAddress("0.0.0.0", PortInboundCapture),
		TrafficDirection:                 corev3.TrafficDirection_INBOUND,
		ListenerFilters:                  inboundListenerFilters(),
		ContinueOnListenerFiltersTimeout: true,
	}
	var err error
	for _, in := range b.inboundPorts() {
		var chains []*listenerv3.FilterChain
		if chains, err = inboundChains(in, streamIdleTimeout(b.mesh), b.telemetry()); err != nil {
			break
		}
		l.FilterChains = append(l.FilterChains, chains...)
		b.addCluster(inboundCluster(in))
	}
	l.DefaultFilterChain = passthroughChain(ClusterInboundPassthrough)
	b.addListener(l, err)
	b.addCluster(inboundPassthroughCluster(), nil)
}

// inboundListenerFilters restore the original destination (chains match its
// port) and detect TLS (PERMISSIVE chains match the transport protocol).
func inboundListenerFilters() []*listenerv3.ListenerFilter {
	return []*listenerv3.ListenerFilter{
		{Name: listenerOriginalDst, ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: originalDstTypedConfig}},
		{Name: listenerTLSInspector, ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: tlsInspectorTypedConfig}},
	}
}

// inboundPorts are the proxy's inbound ports that are in range and not repeated.
func (b *builder) inboundPorts() []*ir.InboundPort {
	out := make([]*ir.InboundPort, 0, len(b.proxy.Inbound))
	seen := map[uint32]bool{}
	for _, in := range b.proxy.Inbound {
		if in == nil || in.Port == 0 || in.Port > 65535 || seen[in.Port] {
			b.errs.add(podRef(b.proxy), "inbound port %v is out of range or repeated; port skipped", inboundPortNumber(in))
			continue
		}
		seen[in.Port] = true
		out = append(out, in)
	}
	return out
}

func inboundPortNumber(in *ir.InboundPort) any {
	if in == nil {
		return nil
	}
	return in.Port
}

// inboundChains are a port's chains by mTLS mode: STRICT requires mTLS on
// every connection; PERMISSIVE has an mTLS chain for TLS that offers the
// mesh's ALPN (ALPNMesh, which client sidecars offer), a plaintext one, and
// one passing any other TLS through to the application untouched (an
// application that speaks TLS itself, called by a client outside the
// mesh); DISABLE is plaintext only. Each chain's network filter has its own
// stat prefix, inbound_<port>_mtls, inbound_<port>_plaintext or
// inbound_<port>_tls, so the sidecar's metrics say how the connection came.
func inboundChains(in *ir.InboundPort, idle *durationpb.Duration, t *httpTelemetry) ([]*listenerv3.FilterChain, error) {
	var mtls, plain *listenerv3.Filter
	var err error
	if in.MTLS == ir.MTLSStrict || in.MTLS == ir.MTLSPermissive {
		if mtls, err = inboundFilter(in, true, idle, t); err != nil {
			return nil, err
		}
	}
	if in.MTLS != ir.MTLSStrict {
		if plain, err = inboundFilter(in, false, idle, t); err != nil {
			return nil, err
		}
	}
	switch in.MTLS {
	case ir.MTLSStrict:
		return []*listenerv3.FilterChain{inboundChain(in, mtls, "", true)}, nil
	case ir.MTLSPermissive:
		tls, err := appTLSChain(in)
		if err != nil {
			return nil, err
		}
		return []*listenerv3.FilterChain{inboundChain(in, mtls, transportTLS, true), inboundChain(in, plain, transportPlaintext, false), tls}, nil
	default:
		return []*listenerv3.FilterChain{inboundChain(in, plain, "", false)}, nil
	}
}

// InboundStatPrefix is the stat prefix of an inbound port's connection
// manager or TCP proxy: inbound_<port>_mtls or inbound_<port>_plaintext.
func InboundStatPrefix(port uint32, mtls bool) string {
	security := "plaintext"
	if mtls {
		security = "mtls"
	}
	return "inbound_" + strconv.FormatUint(uint64(port), 10) + "_" + security
}

// inboundChain matches the port (and the transport protocol when set) and
// terminates mTLS when asked; a PERMISSIVE mTLS chain also matches the
// mesh's ALPN.
func inboundChain(in *ir.InboundPort, f *listenerv3.Filter, transport string, mtls bool) *listenerv3.FilterChain {
	chain := &listenerv3.FilterChain{
		Name: inboundChainName(in, "plaintext"),
		FilterChainMatch: &listenerv3.FilterChainMatch{
			DestinationPort:   wrapperspb.UInt32(in.Port),
			TransportProtocol: transport,
		},
		Filters: []*listenerv3.Filter{f},
	}
	if mtls {
		chain.Name = inboundChainName(in, "mtls")
		chain.TransportSocket = downstreamTLS(in.Protocol.IsHTTP(), in.MTLS == ir.MTLSStrict)
		if transport != "" {
			chain.FilterChainMatch.ApplicationProtocols = meshALPN
		}
	}
	return chain
}

func inboundChainName(in *ir.InboundPort, kind string) string {
	return "inbound|" + strconv.FormatUint(uint64(in.Port), 10) + "|" + kind
}

// appTLSChain passes TLS that is not the mesh's to the application as is:
// a TCP proxy to the port's inbound cluster, stat prefix inbound_<port>_tls.
func appTLSChain(in *ir.InboundPort) (*listenerv3.FilterChain, error) {
	f, err := tcpProxyFilter("inbound_"+strconv.FormatUint(uint64(in.Port), 10)+"_tls", InboundClusterName(in.Port))
	if err != nil {
		return nil, err
	}
	return &listenerv3.FilterChain{
		Name: inboundChainName(in, "tls"),
		FilterChainMatch: &listenerv3.FilterChainMatch{
			DestinationPort:   wrapperspb.UInt32(in.Port),
			TransportProtocol: transportTLS,
		},
		Filters: []*listenerv3.Filter{f},
	}, nil
}

// inboundFilter proxies HTTP through a connection manager (which tells the
// application the client's identity in x-forwarded-client-cert) and TCP as is.
func inboundFilter(in *ir.InboundPort, mtls bool, idle *durationpb.Duration, t *httpTelemetry) (*listenerv3.Filter, error) {
	cluster := InboundClusterName(in.Port)
	statPrefix := InboundStatPrefix(in.Port, mtls)
	if !in.Protocol.IsHTTP() {
		return tcpProxyFilter(statPrefix, cluster)
	}
	rc := &routev3.RouteConfiguration{
		Name: cluster,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    "inbound|http|" + strconv.FormatUint(uint64(in.Port), 10),
			Domains: []string{"*"},
			Routes:  inboundRoutes(cluster),
		}},
	}
	m := allowWebsocket(inlineHCM(statPrefix, rc))
	m.StreamIdleTimeout = idle
	t.apply(m)
	m.ForwardClientCertDetails = hcmv3.HttpConnectionManager_SANITIZE_SET
	m.SetCurrentClientCertDetails = &hcmv3.HttpConnectionManager_SetCurrentClientCertDetails{Uri: true}
	return hcmFilter(m)
}
