package generate

import (
	"slices"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// routeConfig is one virtual host, <fqdn>:<port>, whose domains are the
// names its listeners are dialled by (gRPC matches the dialled name against
// them), with the service's rules or one default route.
func (g *grpcBuilder) routeConfig(s *grpcService, port uint32, names []string) (*routev3.RouteConfiguration, error) {
	name := grpcHostPort(s.FQDN, port)
	rc := &routev3.RouteConfiguration{
		Name: name,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    name,
			Domains: slices.Clone(names),
			Routes:  g.routes(s, port),
		}},
	}
	return rc, rc.ValidateAll()
}

// routes are the service's rules, or one route to the port's cluster.
func (g *grpcBuilder) routes(s *grpcService, port uint32) []*routev3.Route {
	if len(s.Routes) == 0 {
		return []*routev3.Route{g.defaultRoute(s, port)}
	}
	var out []*routev3.Route
	for _, r := range s.Routes {
		if r != nil {
			out = append(out, g.rule(port, r)...)
		}
	}
	return out
}

func (g *grpcBuilder) defaultRoute(s *grpcService, port uint32) *routev3.Route {
	t := g.targets[clusterName(s.FQDN, port, "")]
	if t == nil {
		return failingRoute("default", matchAll())
	}
	return &routev3.Route{
		Name:  "default",
		Match: matchAll(),
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: t.name},
			HashPolicy:       grpcHashPolicy([]*grpcTarget{t}),
		}},
	}
}

// rule builds one route per alternative match that gRPC can evaluate. A rule
// whose matches cannot be expressed is reported and left out; a rule whose
// action is invalid, or one gRPC cannot carry out (a redirect), fails the
// calls it matches (UNAVAILABLE), so they do not fall through to a later rule.
func (g *grpcBuilder) rule(port uint32, in *ir.HTTPRoute) []*routev3.Route {
	g.warnRule(in)
	alternatives, ok := g.grpcMatches(in)
	if !ok {
		return nil
	}
	matches, err := routeMatches(alternatives)
	if err != nil {
		g.errs.add(refOf(in.Source), "route %s: %v; rule skipped", in.Name, err)
		return nil
	}
	out := make([]*routev3.Route, 0, len(matches))
	for _, m := range matches {
		out = append(out, g.buildRoute(port, in, m))
	}
	return out
}

func (g *grpcBuilder) buildRoute(port uint32, in *ir.HTTPRoute, m *routev3.RouteMatch) *routev3.Route {
	rt := &routev3.Route{Name: in.Name, Match: m}
	err := g.fillRoute(rt, port, in)
	if err == nil {
		err = rt.ValidateAll()
	}
	if err != nil {
		g.errs.add(refOf(in.Source), "route %s: %v; rule fails the calls of proxyless gRPC clients", in.Name, err)
		return failingRoute(in.Name, m)
	}
	return rt
}

// fillRoute checks a rule, then lets every route feature fill in its route
// in gRPC's terms: a forwarding rule starts from an empty route action.
func (g *grpcBuilder) fillRoute(rt *routev3.Route, port uint32, in *ir.HTTPRoute) error {
	if err := checkRule(in); err != nil {
		return err
	}
	r := &grpcRule{g: g, port: port, in: in, rt: rt}
	if forwards(in) {
		r.action = &routev3.RouteAction{}
		rt.Action = &routev3.Route_Route{Route: r.action}
	}
	return r.applyFeatures()
}

// failingRoute fails the calls it matches: gRPC answers UNAVAILABLE to a
// route without a forwarding action.
func failingRoute(name string, m *routev3.RouteMatch) *routev3.Route {
	return &routev3.Route{
		Name:   name,
		Match:  m,
		Action: &routev3.Route_NonForwardingAction{NonForwardingAction: &routev3.NonForwardingAction{}},
	}
}
