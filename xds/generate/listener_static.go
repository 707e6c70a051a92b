package generate

import (
	"google.golang.org/protobuf/types/known/anypb"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// static adds the Prometheus and readiness listeners, both served by Envoy's
// admin endpoint through the admin cluster.
func (b *builder) static() {
	b.addListener(adminListener(ListenerPrometheus, PortPrometheus, prometheusConfig), nil)
	b.readiness()
	b.addCluster(staticCluster(ClusterAdmin, PortAdmin), nil)
}

// The HTTP connection managers of the admin listeners are constants, packed once.
var (
	prometheusConfig = constConfig(adminHCM(ListenerPrometheus, &routev3.RouteMatch{
		PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/stats/prometheus"},
	}, ""), ClusterAdmin)
	readinessConfig = constConfig(adminHCM(ListenerReadiness, &routev3.RouteMatch{
		PathSpecifier: &routev3.RouteMatch_Path{Path: "/healthz/ready"},
	}, "/ready"), ClusterAdmin)
)

// adminHCM exposes one admin path, optionally rewritten.
func adminHCM(name string, m *routev3.RouteMatch, rewrite string) *hcmv3.HttpConnectionManager {
	rt := clusterRoute(name, m, ClusterAdmin)
	rt.GetRoute().PrefixRewrite = rewrite
	return inlineHCM(name, &routev3.RouteConfiguration{
		Name: name,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    name,
			Domains: []string{"*"},
			Routes:  []*routev3.Route{rt},
		}},
	})
}

// adminListener serves an admin HTTP connection manager on a port.
func adminListener(name string, port uint32, hcm *anypb.Any) *listenerv3.Listener {
	return &listenerv3.Listener{
		Name:             name,
		Address:          socketAddress("0.0.0.0", port),
		TrafficDirection: corev3.TrafficDirection_INBOUND,
		FilterChains:     []*listenerv3.FilterChain{{Name: name, Filters: []*listenerv3.Filter{packedFilter(filterHCM, hcm)}}},
	}
}
