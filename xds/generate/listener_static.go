package generate

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// static adds the Prometheus and readiness listeners, both served by Envoy's
// admin endpoint through the admin cluster.
func (b *builder) static() {
	b.addListener(adminListener(ListenerPrometheus, PortPrometheus, &routev3.RouteMatch{
		PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/stats/prometheus"},
	}, ""))
	b.addListener(adminListener(ListenerReadiness, PortReadiness, &routev3.RouteMatch{
		PathSpecifier: &routev3.RouteMatch_Path{Path: "/healthz/ready"},
	}, "/ready"))
	b.addCluster(staticCluster(ClusterAdmin, PortAdmin), nil)
}

// adminListener exposes one admin path on a port, optionally rewritten.
func adminListener(name string, port uint32, m *routev3.RouteMatch, rewrite string) (*listenerv3.Listener, error) {
	rt := clusterRoute(name, m, ClusterAdmin)
	rt.GetRoute().PrefixRewrite = rewrite
	rc := &routev3.RouteConfiguration{
		Name: name,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    name,
			Domains: []string{"*"},
			Routes:  []*routev3.Route{rt},
		}},
	}
	f, err := hcmFilter(inlineHCM(name, rc))
	if err != nil {
		return nil, err
	}
	return &listenerv3.Listener{
		Name:             name,
		Address:          socketAddress("0.0.0.0", port),
		TrafficDirection: corev3.TrafficDirection_INBOUND,
		FilterChains:     []*listenerv3.FilterChain{{Name: name, Filters: []*listenerv3.Filter{f}}},
	}, nil
}
