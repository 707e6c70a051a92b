package sidecars

import (
	"fmt"
	"hash/maphash"
	"slices"
	"strconv"
	"strings"
	"sync"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// info is what the harness needs to know of one resource: what it makes a
// proxy subscribe to, and what the checks look for. Identical resources
// are parsed once for the whole fleet (see index).
type info struct {
	name string
	// eds is a cluster's endpoint assignment name, "" unless it is an EDS cluster.
	eds string
	// routes are a listener's RDS route configuration names.
	routes []string
	// secrets are the SDS names a cluster or listener references.
	secrets []string
	// ips are an endpoint assignment's addresses, sorted.
	ips []string
	// splits are a route configuration's weighted splits, each the
	// weights joined by commas.
	splits []string
}

// index caches the parsed info of every distinct resource by content.
type index struct {
	seed maphash.Seed
	mu   sync.Mutex
	byID map[uint64]*info
}

func newIndex() *index { return &index{seed: maphash.MakeSeed(), byID: map[uint64]*info{}} }

// get returns the info of a resource, parsing it the first time its content is seen.
func (x *index) get(typeURL string, a *anypb.Any) (*info, error) {
	id := maphash.Bytes(x.seed, a.GetValue()) ^ maphash.String(x.seed, typeURL)
	x.mu.Lock()
	in := x.byID[id]
	x.mu.Unlock()
	if in != nil {
		return in, nil
	}
	in, err := parse(typeURL, a)
	if err != nil {
		return nil, err
	}
	x.mu.Lock()
	x.byID[id] = in
	x.mu.Unlock()
	return in, nil
}

func parse(typeURL string, a *anypb.Any) (*info, error) {
	msg, err := a.UnmarshalNew()
	if err != nil {
		return nil, fmt.Errorf("decoding a %s resource: %w", typeURL, err)
	}
	switch m := msg.(type) {
	case *clusterv3.Cluster:
		return clusterInfo(m), nil
	case *listenerv3.Listener:
		return listenerInfo(m)
	case *endpointv3.ClusterLoadAssignment:
		return &info{name: m.GetClusterName(), ips: assignmentIPs(m)}, nil
	case *routev3.RouteConfiguration:
		return &info{name: m.GetName(), splits: routeSplits(m)}, nil
	case *tlsv3.Secret:
		return &info{name: m.GetName()}, nil
	}
	return nil, fmt.Errorf("unexpected resource %T for %s", msg, typeURL)
}

func clusterInfo(c *clusterv3.Cluster) *info {
	in := &info{name: c.GetName()}
	if c.GetType() == clusterv3.Cluster_EDS {
		in.eds = c.GetName()
		if n := c.GetEdsClusterConfig().GetServiceName(); n != "" {
			in.eds = n
		}
	}
	sockets := []*corev3.TransportSocket{c.GetTransportSocket()}
	for _, m := range c.GetTransportSocketMatches() {
		sockets = append(sockets, m.GetTransportSocket())
	}
	for _, ts := range sockets {
		in.secrets = append(in.secrets, socketSecrets(ts, &tlsv3.UpstreamTlsContext{})...)
	}
	in.secrets = uniqueSorted(in.secrets)
	return in
}

func listenerInfo(l *listenerv3.Listener) (*info, error) {
	in := &info{name: l.GetName()}
	chains := slices.Clone(l.GetFilterChains())
	if d := l.GetDefaultFilterChain(); d != nil {
		chains = append(chains, d)
	}
	for _, fc := range chains {
		in.secrets = append(in.secrets, socketSecrets(fc.GetTransportSocket(), &tlsv3.DownstreamTlsContext{})...)
		for _, f := range fc.GetFilters() {
			if f.GetTypedConfig().MessageIs(&hcmv3.HttpConnectionManager{}) {
				hcm := &hcmv3.HttpConnectionManager{}
				if err := f.GetTypedConfig().UnmarshalTo(hcm); err != nil {
					return nil, fmt.Errorf("decoding the HCM of listener %s: %w", l.GetName(), err)
				}
				if n := hcm.GetRds().GetRouteConfigName(); n != "" {
					in.routes = append(in.routes, n)
				}
			}
		}
	}
	in.routes = uniqueSorted(in.routes)
	in.secrets = uniqueSorted(in.secrets)
	return in, nil
}

// tlsContext is an upstream or downstream TLS context.
type tlsContext interface {
	proto.Message
	GetCommonTlsContext() *tlsv3.CommonTlsContext
}

// socketSecrets are the SDS names of a TLS transport socket.
func socketSecrets(ts *corev3.TransportSocket, ctx tlsContext) []string {
	if ts.GetTypedConfig() == nil || ts.GetTypedConfig().UnmarshalTo(ctx) != nil {
		return nil
	}
	common := ctx.GetCommonTlsContext()
	var out []string
	for _, s := range common.GetTlsCertificateSdsSecretConfigs() {
		out = append(out, s.GetName())
	}
	if s := common.GetValidationContextSdsSecretConfig(); s != nil {
		out = append(out, s.GetName())
	}
	if s := common.GetCombinedValidationContext().GetValidationContextSdsSecretConfig(); s != nil {
		out = append(out, s.GetName())
	}
	return out
}

func assignmentIPs(cla *endpointv3.ClusterLoadAssignment) []string {
	var out []string
	for _, l := range cla.GetEndpoints() {
		for _, e := range l.GetLbEndpoints() {
			out = append(out, e.GetEndpoint().GetAddress().GetSocketAddress().GetAddress())
		}
	}
	return uniqueSorted(out)
}

func routeSplits(rc *routev3.RouteConfiguration) []string {
	var out []string
	for _, vh := range rc.GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			wc := r.GetRoute().GetWeightedClusters()
			if wc == nil {
				continue
			}
			out = append(out, splitKey(weightsOf(wc)))
		}
	}
	return uniqueSorted(out)
}

func weightsOf(wc *routev3.WeightedCluster) []uint32 {
	var ws []uint32
	for _, c := range wc.GetClusters() {
		ws = append(ws, c.GetWeight().GetValue())
	}
	return ws
}

// splitKey formats weights as "90,10".
func splitKey(ws []uint32) string {
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = strconv.FormatUint(uint64(w), 10)
	}
	return strings.Join(parts, ",")
}

func uniqueSorted(s []string) []string {
	s = slices.DeleteFunc(s, func(v string) bool { return v == "" })
	slices.Sort(s)
	return slices.Compact(s)
}

// dependentType is the type a resource type's references subscribe to.
var dependentTypes = []string{resource.EndpointType, resource.RouteType, resource.SecretType}
