package generate

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/types/known/wrapperspb"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// destinationsFeature sends a rule's requests to one cluster, or splits them
// by weight between several. A destination whose cluster does not exist
// makes the rule invalid.
type destinationsFeature struct{}

func (destinationsFeature) name() string { return "destinations" }

func (destinationsFeature) fields() []routeField {
	return []routeField{{path: "destinations", api: "route", grpc: grpcSent,
		note: "one cluster or `weighted_clusters`, subsets included"}}
}

func (destinationsFeature) check(*ir.HTTPRoute) error { return nil }

func (destinationsFeature) sidecar(r *sidecarRule) error {
	if r.action == nil {
		return nil
	}
	var err error
	r.targets, err = r.b.setDestinations(r.action, r.port, r.in.Destinations)
	return err
}

func (destinationsFeature) grpc(r *grpcRule) error {
	if r.action == nil {
		return nil
	}
	var err error
	r.targets, err = r.g.setDestinations(r.action, r.port, r.in.Destinations)
	return err
}

// destinationCluster is the cluster of a destination reached through a port;
// a destination without a port uses the port the request came in on.
func destinationCluster(d *ir.Destination, port uint32) string {
	return clusterName(d.Service, destinationPort(d, port), d.Subset)
}

func destinationPort(d *ir.Destination, port uint32) uint32 {
	if d.Port != 0 {
		return d.Port
	}
	return port
}

// destination is the generated cluster of destinationCluster(d, port), or nil.
func (b *builder) destination(d *ir.Destination, port uint32) *target {
	return b.target(d.Service, destinationPort(d, port), d.Subset)
}

// setDestinations sends to one cluster, or splits by weight between several.
func (b *builder) setDestinations(a *routev3.RouteAction, port uint32, ds []*ir.Destination) ([]*target, error) {
	return splitDestinations(a, port, ds, b.destination, func(t *target) string { return t.name })
}

func (g *grpcBuilder) setDestinations(a *routev3.RouteAction, port uint32, ds []*ir.Destination) ([]*grpcTarget, error) {
	return splitDestinations(a, port, ds, g.target, func(t *grpcTarget) string { return t.name })
}

// splitDestinations resolves each destination with find (nil when its
// cluster does not exist) and sends a to the one cluster, or splits it by
// weight between several. Both generators route this way.
func splitDestinations[T comparable](a *routev3.RouteAction, port uint32, ds []*ir.Destination,
	find func(*ir.Destination, uint32) T, name func(T) string) ([]T, error) {
	var none T
	targets := make([]T, 0, len(ds))
	weights := make([]*routev3.WeightedCluster_ClusterWeight, 0, len(ds))
	for _, d := range ds {
		if d == nil {
			return nil, errors.New("nil destination")
		}
		t := find(d, port)
		if t == none {
			return nil, fmt.Errorf("destination cluster %s not found", destinationCluster(d, port))
		}
		targets = append(targets, t)
		weights = append(weights, &routev3.WeightedCluster_ClusterWeight{Name: name(t), Weight: wrapperspb.UInt32(d.Weight)})
	}
	if len(weights) == 1 {
		a.ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: weights[0].Name}
		return targets, nil
	}
	a.ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{Clusters: weights}}
	return targets, nil
}
