package generate

import (
	"cmp"
	"net/netip"
	"slices"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// loadAssignment lists the endpoints of an EDS cluster, grouped by zone
// (zones sorted, endpoints in model order). Endpoints without a usable
// address or port are reported and left out; an empty assignment is valid.
func (b *builder) loadAssignment(t *target) *endpointv3.ClusterLoadAssignment {
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: t.name}
	eps := t.service.EndpointsOf(t.subset)
	alloc := newEndpointAlloc(len(eps))
	for _, ep := range eps {
		port, ok := b.endpointPort(t, ep)
		if !ok {
			continue
		}
		group := localityGroup(cla, ep.Zone, len(eps))
		group.LbEndpoints = append(group.LbEndpoints, alloc.lbEndpoint(ep.Address, port))
	}
	slices.SortStableFunc(cla.Endpoints, func(x, y *endpointv3.LocalityLbEndpoints) int {
		return cmp.Compare(x.GetLocality().GetZone(), y.GetLocality().GetZone())
	})
	if err := cla.ValidateAll(); err != nil {
		b.errs.add(serviceRef(t.service.Service), "endpoints of %s: %v; endpoints dropped", cla.ClusterName, err)
		cla.Endpoints = nil
	}
	return cla
}

// endpointPort is the endpoint's port for the service port: by port name,
// else the numeric target port.
func (b *builder) endpointPort(t *target, ep *ir.Endpoint) (uint32, bool) {
	if ep == nil {
		return 0, false
	}
	if _, err := netip.ParseAddr(ep.Address); err != nil {
		b.errs.add(serviceRef(t.service.Service), "endpoint address %q is not an IP address; endpoint skipped", ep.Address)
		return 0, false
	}
	port, ok := ep.Ports[t.port.Name]
	if !ok {
		port = t.port.TargetPort
	}
	return port, port != 0 && port <= 65535
}

// localityGroup returns the group of endpoints for a zone, adding it (with
// room for n endpoints) if needed.
func localityGroup(cla *endpointv3.ClusterLoadAssignment, zone string, n int) *endpointv3.LocalityLbEndpoints {
	for _, g := range cla.Endpoints {
		if g.GetLocality().GetZone() == zone {
			return g
		}
	}
	g := &endpointv3.LocalityLbEndpoints{LbEndpoints: make([]*endpointv3.LbEndpoint, 0, n)}
	if zone != "" {
		g.Locality = &corev3.Locality{Zone: zone}
	}
	cla.Endpoints = append(cla.Endpoints, g)
	return g
}

func lbEndpoint(ip string, port uint32) *endpointv3.LbEndpoint {
	return &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{
		Endpoint: &endpointv3.Endpoint{Address: socketAddress(ip, port)},
	}}
}

// endpointAlloc allocates the seven messages of each of n endpoints in seven
// slices rather than 7n objects: endpoints are most of a large mesh's config.
// Each message is used in place, never copied.
type endpointAlloc struct {
	lb    []endpointv3.LbEndpoint
	host  []endpointv3.LbEndpoint_Endpoint
	ep    []endpointv3.Endpoint
	addr  []corev3.Address
	sock  []corev3.Address_SocketAddress
	sa    []corev3.SocketAddress
	ports []corev3.SocketAddress_PortValue
	next  int
}

func newEndpointAlloc(n int) *endpointAlloc {
	return &endpointAlloc{
		lb: make([]endpointv3.LbEndpoint, n), host: make([]endpointv3.LbEndpoint_Endpoint, n),
		ep: make([]endpointv3.Endpoint, n), addr: make([]corev3.Address, n),
		sock: make([]corev3.Address_SocketAddress, n), sa: make([]corev3.SocketAddress, n),
		ports: make([]corev3.SocketAddress_PortValue, n),
	}
}

// lbEndpoint is lbEndpoint(ip, port) from the preallocated messages.
func (a *endpointAlloc) lbEndpoint(ip string, port uint32) *endpointv3.LbEndpoint {
	i := a.next
	a.next++
	a.ports[i].PortValue = port
	a.sa[i].Address, a.sa[i].PortSpecifier = ip, &a.ports[i]
	a.sock[i].SocketAddress = &a.sa[i]
	a.addr[i].Address = &a.sock[i]
	a.ep[i].Address = &a.addr[i]
	a.host[i].Endpoint = &a.ep[i]
	a.lb[i].HostIdentifier = &a.host[i]
	return &a.lb[i]
}
