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
//
// It is not run through ValidateAll: the cluster name is never empty, and
// what ValidateAll checks of an endpoint (an address that is not empty, a
// port up to 65535) endpointPort has checked — the address parses as an IP,
// the port is 1–65535.
func (b *builder) loadAssignment(t *target) *endpointv3.ClusterLoadAssignment {
	cla := b.mem.loads.new()
	cla.ClusterName = t.name
	eps := b.usableEndpoints(t)
	zones := b.zones(eps)
	if len(zones) == 0 {
		return cla
	}
	cla.Endpoints = b.mem.localityLists.slice(len(zones))
	for i, z := range zones {
		cla.Endpoints[i] = b.localityGroup(z)
	}
	b.portEndpoints.start(t)
	for _, ep := range eps {
		g := cla.Endpoints[zoneIndex(zones, ep.zone)]
		g.LbEndpoints = append(g.LbEndpoints, b.lbEndpoint(t, ep))
	}
	return cla
}

// usableEndpoint is a model endpoint with its port for one cluster.
type usableEndpoint struct {
	model         *ir.Endpoint
	address, zone string
	port          uint32
}

// lbEndpoint is the message of an endpoint of t: shared with the base
// cluster of the service port when t is one of its subsets.
func (b *builder) lbEndpoint(t *target, ep usableEndpoint) *endpointv3.LbEndpoint {
	if lb := b.portEndpoints.find(t, ep.model); lb != nil {
		return lb
	}
	lb := b.mem.endpoints.new().lbEndpoint(ep.address, ep.port)
	lb.Metadata = b.endpointMetadataOf(t, ep.model)
	b.portEndpoints.keep(t, ep.model, lb)
	return lb
}

// endpointCache holds the endpoint messages of the base cluster of a
// service port with subsets, for the subsets' clusters to share: the
// endpoints of a subset are some of the service's, in the same order, on
// the same port. Clusters are generated base first, then its subsets.
type endpointCache struct {
	service *service
	port    *ir.ServicePort
	models  []*ir.Endpoint
	msgs    []*endpointv3.LbEndpoint
	next    int // where find resumes: lookups come in model order
}

// start prepares the cache for the endpoints of t.
func (c *endpointCache) start(t *target) {
	c.next = 0
	if t.subset == nil && len(t.service.Subsets) > 0 {
		c.service, c.port = t.service, t.port
		c.models, c.msgs = c.models[:0], c.msgs[:0]
	}
}

// find returns the base cluster's message for an endpoint of subset
// cluster t, or nil.
func (c *endpointCache) find(t *target, ep *ir.Endpoint) *endpointv3.LbEndpoint {
	if t.subset == nil || c.service != t.service || c.port != t.port {
		return nil
	}
	for c.next < len(c.models) {
		i := c.next
		c.next++
		if c.models[i] == ep {
			return c.msgs[i]
		}
	}
	return nil
}

// keep records a message of a base cluster whose subsets will look for it.
func (c *endpointCache) keep(t *target, ep *ir.Endpoint, lb *endpointv3.LbEndpoint) {
	if t.subset == nil && c.service == t.service && c.port == t.port {
		c.models, c.msgs = append(c.models, ep), append(c.msgs, lb)
	}
}

// usableEndpoints are the endpoints of t that have an IP address and a port,
// in the builder's scratch space (valid until the next call).
func (b *builder) usableEndpoints(t *target) []usableEndpoint {
	out := b.endpointScratch[:0]
	for _, ep := range t.service.EndpointsOf(t.subset) {
		if port, ok := b.endpointPort(t, ep); ok {
			out = append(out, usableEndpoint{model: ep, address: ep.Address, zone: ep.Zone, port: port})
		}
	}
	b.endpointScratch = out
	return out
}

// endpointPort is the endpoint's port for the service port: by port name,
// else the numeric target port.
func (b *builder) endpointPort(t *target, ep *ir.Endpoint) (uint32, bool) {
	return endpointPort(&b.errs, t.service.Service, t.port, ep)
}

// endpointPort is the port of ep for the service port p: the endpoint's own
// for p's name, else p's numeric target port. An endpoint whose address is
// not a plain IP address (a zone included) is reported on s and skipped.
func endpointPort(errs *errorList, s *ir.Service, p *ir.ServicePort, ep *ir.Endpoint) (uint32, bool) {
	if ep == nil {
		return 0, false
	}
	if a, err := netip.ParseAddr(ep.Address); err != nil || a.Zone() != "" {
		errs.add(serviceRef(s), "endpoint address %q is not an IP address; endpoint skipped", ep.Address)
		return 0, false
	}
	port, ok := ep.Ports[p.Name]
	if !ok {
		port = p.TargetPort
	}
	return port, port != 0 && port <= 65535
}

// zone is a zone and how many endpoints are in it.
type zone struct {
	name  string
	count int
}

// zones are the zones of the endpoints, sorted, in the builder's scratch
// space (valid until the next call).
func (b *builder) zones(eps []usableEndpoint) []zone {
	out := b.zoneScratch[:0]
	for _, ep := range eps {
		if i := zoneIndex(out, ep.zone); i >= 0 {
			out[i].count++
		} else {
			out = append(out, zone{name: ep.zone, count: 1})
		}
	}
	slices.SortFunc(out, func(x, y zone) int { return cmp.Compare(x.name, y.name) })
	b.zoneScratch = out
	return out
}

func zoneIndex(zones []zone, name string) int {
	for i, z := range zones {
		if z.name == name {
			return i
		}
	}
	return -1
}

// localityGroup is an empty group for the endpoints of a zone, with room for
// all of them. Groups of one zone share their Locality message.
func (b *builder) localityGroup(z zone) *endpointv3.LocalityLbEndpoints {
	g := b.mem.localities.new()
	g.LbEndpoints = b.mem.endpointLists.slice(z.count)[:0]
	if z.name != "" {
		g.Locality = b.locality(z.name)
	}
	return g
}

func (b *builder) locality(zone string) *corev3.Locality {
	l := b.localities[zone]
	if l == nil {
		l = &corev3.Locality{Zone: zone}
		if b.localities == nil {
			b.localities = map[string]*corev3.Locality{}
		}
		b.localities[zone] = l
	}
	return l
}

func lbEndpoint(ip string, port uint32) *endpointv3.LbEndpoint {
	return &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{
		Endpoint: &endpointv3.Endpoint{Address: socketAddress(ip, port)},
	}}
}

// endpointMessages are the seven messages of one endpoint, allocated
// together (see alloc.go): endpoints are most of a large mesh's config.
type endpointMessages struct {
	lb   endpointv3.LbEndpoint
	host endpointv3.LbEndpoint_Endpoint
	ep   endpointv3.Endpoint
	addr corev3.Address
	sock corev3.Address_SocketAddress
	sa   corev3.SocketAddress
	port corev3.SocketAddress_PortValue
}

// lbEndpoint is lbEndpoint(ip, port) in m.
func (m *endpointMessages) lbEndpoint(ip string, port uint32) *endpointv3.LbEndpoint {
	m.port.PortValue = port
	m.sa.Address, m.sa.PortSpecifier = ip, &m.port
	m.sock.SocketAddress = &m.sa
	m.addr.Address = &m.sock
	m.ep.Address = &m.addr
	m.host.Endpoint = &m.ep
	m.lb.HostIdentifier = &m.host
	return &m.lb
}
