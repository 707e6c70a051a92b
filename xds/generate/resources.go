package generate

import (
	"cmp"
	"slices"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
)

// Resources are the Envoy resources of one proxy, each slice sorted by name.
type Resources struct {
	Listeners []*listenerv3.Listener
	Routes    []*routev3.RouteConfiguration
	Clusters  []*clusterv3.Cluster
	Endpoints []*endpointv3.ClusterLoadAssignment
	// Secrets stay empty here: SDS is generated elsewhere. Only SecretWorkloadCert
	// and SecretRootCA are referenced.
	Secrets []*tlsv3.Secret
}

// ByType returns the resources keyed by xDS type URL, as the go-control-plane
// snapshot cache takes them. Every type URL is present, possibly with no resources.
func (r *Resources) ByType() map[string][]types.Resource {
	return map[string][]types.Resource{
		resource.ListenerType: asResources(r.Listeners),
		resource.RouteType:    asResources(r.Routes),
		resource.ClusterType:  asResources(r.Clusters),
		resource.EndpointType: asResources(r.Endpoints),
		resource.SecretType:   asResources(r.Secrets),
	}
}

// Size is the total encoded size of every resource, in bytes.
func (r *Resources) Size() int {
	n := 0
	for _, list := range r.ByType() {
		for _, m := range list {
			n += proto.Size(m)
		}
	}
	return n
}

func asResources[T types.Resource](in []T) []types.Resource {
	out := make([]types.Resource, len(in))
	for i, m := range in {
		out[i] = m
	}
	return out
}

// sort orders every slice by resource name.
func (r *Resources) sort() {
	sortByName(r.Listeners, (*listenerv3.Listener).GetName)
	sortByName(r.Routes, (*routev3.RouteConfiguration).GetName)
	sortByName(r.Clusters, (*clusterv3.Cluster).GetName)
	sortByName(r.Endpoints, (*endpointv3.ClusterLoadAssignment).GetClusterName)
	sortByName(r.Secrets, (*tlsv3.Secret).GetName)
}

// sortByName sorts list by name. Generation leaves lists nearly sorted (the
// outbound resources of a large mesh in order, a few fixed ones after them):
// when little follows the sorted prefix, each of those resources is moved
// into place (a binary search and a copy); otherwise the list is sorted.
func sortByName[T any](list []T, name func(T) string) {
	compare := func(x, y T) int { return cmp.Compare(name(x), name(y)) }
	sorted := 1
	for sorted < len(list) && compare(list[sorted-1], list[sorted]) <= 0 {
		sorted++
	}
	if len(list)-sorted > 16 {
		slices.SortFunc(list, compare)
		return
	}
	for i := sorted; i < len(list); i++ {
		v := list[i]
		at, _ := slices.BinarySearchFunc(list[:i], v, compare)
		copy(list[at+1:i+1], list[at:i])
		list[at] = v
	}
}
