package generate

import (
	"cmp"
	"net/netip"
	"slices"

	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// servicePort is one port of one service.
type servicePort struct {
	service *service
	port    *ir.ServicePort
}

// portGroup is every service port with one port number: HTTP ones share a
// route configuration, TCP ones get a filter chain each.
type portGroup struct {
	port      uint32
	http, tcp []servicePort
}

// portGroups groups service ports by number, sorted; services stay in FQDN
// order. The sidecar's own ports are reported and left out. Computed once.
func (b *builder) portGroups() []*portGroup {
	if b.groups != nil {
		return b.groups
	}
	byPort := map[uint32]*portGroup{}
	for _, s := range b.services {
		for _, p := range s.validPorts {
			b.addToGroup(byPort, servicePort{service: s, port: p})
		}
	}
	b.groups = make([]*portGroup, 0, len(byPort))
	for _, g := range byPort {
		b.groups = append(b.groups, g)
	}
	slices.SortFunc(b.groups, func(x, y *portGroup) int { return cmp.Compare(x.port, y.port) })
	return b.groups
}

func (b *builder) addToGroup(byPort map[uint32]*portGroup, sp servicePort) {
	if reservedPorts[sp.port.Port] {
		b.errs.add(serviceRef(sp.service.Service), "port %d is reserved for the sidecar; no outbound listener", sp.port.Port)
		return
	}
	g := byPort[sp.port.Port]
	if g == nil {
		g = &portGroup{port: sp.port.Port}
		byPort[sp.port.Port] = g
	}
	if sp.port.Protocol.IsHTTP() {
		g.http = append(g.http, sp)
	} else {
		g.tcp = append(g.tcp, sp)
	}
}

// outboundListeners adds the capture listener on 15001 and one listener per
// service port number, which the capture listener hands connections to.
func (b *builder) outboundListeners() {
	b.addListener(virtualOutbound())
	for _, g := range b.portGroups() {
		b.addListener(b.outboundPortListener(g))
	}
	b.addCluster(passthroughCluster(), nil)
}

// virtualOutbound captures outbound connections; use_original_dst hands each
// to the listener of its original port, and the rest pass through.
func virtualOutbound() (*listenerv3.Listener, error) {
	return &listenerv3.Listener{
		Name:               ListenerVirtualOutbound,
		Address:            socketAddress("0.0.0.0", PortOutboundCapture),
		UseOriginalDst:     wrapperspb.Bool(true),
		TrafficDirection:   corev3.TrafficDirection_OUTBOUND,
		DefaultFilterChain: passthroughChain(ClusterPassthrough),
	}, nil
}

// passthroughChain forwards a connection untouched to an ORIGINAL_DST
// cluster, ClusterPassthrough or ClusterInboundPassthrough.
func passthroughChain(cluster string) *listenerv3.FilterChain {
	return &listenerv3.FilterChain{Name: cluster, Filters: []*listenerv3.Filter{packedFilter(filterTCPProxy, passthroughConfigs[cluster])}}
}

// passthroughConfigs are the TCP proxy configs of the passthrough chains, by
// cluster, packed once.
var passthroughConfigs = map[string]*anypb.Any{
	ClusterPassthrough:        constConfig(tcpProxy(ClusterPassthrough, ClusterPassthrough), ClusterPassthrough),
	ClusterInboundPassthrough: constConfig(tcpProxy(ClusterInboundPassthrough, ClusterInboundPassthrough), ClusterInboundPassthrough),
}

// outboundPortListener is 0.0.0.0_<port>, not bound: a chain per TCP service
// matching its cluster IPs (endpoint IPs when headless), and by default the
// HTTP connection manager of the port's route configuration when HTTP
// services use the port, else passthrough.
func (b *builder) outboundPortListener(g *portGroup) (*listenerv3.Listener, error) {
	l := &listenerv3.Listener{
		Name:             OutboundListenerName(g.port),
		Address:          socketAddress("0.0.0.0", g.port),
		BindToPort:       wrapperspb.Bool(false),
		TrafficDirection: corev3.TrafficDirection_OUTBOUND,
	}
	claimed := map[netip.Addr]bool{}
	for _, sp := range g.tcp {
		chain, err := b.tcpChain(sp, claimed)
		if err != nil {
			return nil, err
		}
		if chain != nil {
			l.FilterChains = append(l.FilterChains, chain)
		}
	}
	var err error
	l.DefaultFilterChain, err = b.defaultOutboundChain(g)
	return l, err
}

func (b *builder) defaultOutboundChain(g *portGroup) (*listenerv3.FilterChain, error) {
	if len(g.http) == 0 || !b.routeNames[RouteConfigName(g.port)] {
		return passthroughChain(ClusterPassthrough), nil
	}
	f, err := hcmFilter(rdsHCM("outbound_"+OutboundListenerName(g.port), RouteConfigName(g.port), streamIdleTimeout(b.mesh), b.telemetry()))
	if err != nil {
		return nil, err
	}
	return &listenerv3.FilterChain{Name: OutboundListenerName(g.port), Filters: []*listenerv3.Filter{f}}, nil
}

// tcpChain forwards a TCP service's connections to its cluster. Addresses
// claimed by an earlier service on the port are reported and left out; nil
// when no address is left or the cluster was not generated.
func (b *builder) tcpChain(sp servicePort, claimed map[netip.Addr]bool) (*listenerv3.FilterChain, error) {
	t := b.target(sp.service.FQDN, sp.port.Port, "")
	ranges := b.prefixRanges(sp, claimed)
	if len(ranges) == 0 || t == nil {
		return nil, nil
	}
	name := t.name
	// The stat prefix without dots, as the cluster's alt_stat_name (telemetry.go).
	f, err := tcpProxyFilter(StatName(name), name)
	if err != nil {
		return nil, err
	}
	return &listenerv3.FilterChain{
		Name:             name,
		FilterChainMatch: &listenerv3.FilterChainMatch{PrefixRanges: ranges},
		Filters:          []*listenerv3.Filter{f},
	}, nil
}

func (b *builder) prefixRanges(sp servicePort, claimed map[netip.Addr]bool) []*corev3.CidrRange {
	var out []*corev3.CidrRange
	for _, ip := range b.tcpAddresses(sp.service) {
		if claimed[ip] {
			b.errs.add(serviceRef(sp.service.Service), "address %s port %d is used by another TCP service; address skipped", ip, sp.port.Port)
			continue
		}
		claimed[ip] = true
		out = append(out, &corev3.CidrRange{AddressPrefix: ip.String(), PrefixLen: wrapperspb.UInt32(uint32(ip.BitLen()))})
	}
	return out
}

// tcpAddresses are the cluster IPs of a service, or its endpoint IPs when headless.
func (b *builder) tcpAddresses(s *service) []netip.Addr {
	if !s.Headless {
		return s.ips
	}
	out := make([]netip.Addr, 0, len(s.Endpoints))
	for _, ep := range s.Endpoints {
		if ep == nil {
			continue
		}
		if a, err := netip.ParseAddr(ep.Address); err == nil && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}
