package generate

import (
	"net/netip"
	"slices"
	"strconv"

	"google.golang.org/protobuf/types/known/wrapperspb"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// loadAssignment groups a cluster's endpoints by zone. gRPC balances between
// localities by load_balancing_weight (a locality without one is dropped), then
// within each: the weight is the zone's endpoint count, so every endpoint gets
// an equal share, as behind a sidecar. Every group carries a Locality (gRPC
// refuses one without), and an endpoint address is listed once (gRPC refuses
// duplicates).
func (g *grpcBuilder) loadAssignment(t *grpcTarget) *endpointv3.ClusterLoadAssignment {
	byZone := map[string][]*endpointv3.LbEndpoint{}
	seen := map[string]bool{}
	for _, ep := range t.service.EndpointsOf(t.subset) {
		port, ok := g.endpointPort(t, ep)
		if !ok {
			continue
		}
		key := netip.AddrPortFrom(netip.MustParseAddr(ep.Address), uint16(port)).String()
		if seen[key] {
			continue
		}
		seen[key] = true
		byZone[ep.Zone] = append(byZone[ep.Zone], lbEndpoint(ep.Address, port))
	}
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: t.name}
	zones := make([]string, 0, len(byZone))
	for z := range byZone {
		zones = append(zones, z)
	}
	slices.Sort(zones)
	for _, z := range zones {
		cla.Endpoints = append(cla.Endpoints, &endpointv3.LocalityLbEndpoints{
			Locality:            &corev3.Locality{Zone: z},
			LbEndpoints:         byZone[z],
			LoadBalancingWeight: wrapperspb.UInt32(uint32(len(byZone[z]))),
		})
	}
	return cla
}

// endpointPort is the endpoint's port for the service port (by port name,
// else the numeric target port); false for an endpoint that cannot be used.
func (g *grpcBuilder) endpointPort(t *grpcTarget, ep *ir.Endpoint) (uint32, bool) {
	return endpointPort(&g.errs, t.service.Service, t.port, ep)
}

// grpcHostPort is "<host>:<port>", the name of an API listener.
func grpcHostPort(host string, port uint32) string {
	return host + ":" + strconv.FormatUint(uint64(port), 10)
}
