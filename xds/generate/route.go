package generate

import (
	"slices"
	"strconv"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// allowAnyVirtualHost is the catch-all host of every outbound route
// configuration: requests for hosts outside the mesh pass through.
const allowAnyVirtualHost = "allow_any"

// outboundRoutes adds one RouteConfiguration per outbound HTTP port, named by the port.
//
// Route configurations are not run through ValidateAll as a whole: each is
// made of rule routes that passed ValidateAll one by one (buildRoute), hosts
// whose domains follow ValidateAll's rule for them (virtualHost), and parts
// built from constants and names that are never empty (host names, default
// routes to existing clusters, allow_any).
func (b *builder) outboundRoutes() {
	for _, pg := range b.portGroups() {
		if len(pg.http) == 0 {
			continue
		}
		b.routeNames[RouteConfigName(pg.port)] = true
		if b.keepsRoutes(pg.port) {
			b.out.Routes = append(b.out.Routes, b.routeConfig(pg))
		}
	}
}

// routeConfig has a virtual host per service on the port, then allow_any.
// A domain claimed by an earlier host (services by FQDN) is not repeated.
func (b *builder) routeConfig(pg *portGroup) *routev3.RouteConfiguration {
	rc := &routev3.RouteConfiguration{
		Name:             RouteConfigName(pg.port),
		ValidateClusters: wrapperspb.Bool(false),
		VirtualHosts:     make([]*routev3.VirtualHost, 0, len(pg.http)+1),
	}
	hosts := 1
	for _, sp := range pg.http {
		hosts += b.hostCount(sp.service)
	}
	claimed := make(claims, hosts)
	claimed["*"] = struct{}{}
	for _, sp := range pg.http {
		if vh := b.virtualHost(sp, claimed); vh != nil {
			rc.VirtualHosts = append(rc.VirtualHosts, vh)
		}
	}
	rc.VirtualHosts = append(rc.VirtualHosts, passthroughHost())
	return rc
}

// virtualHost routes one service port; nil (reported) when it cannot be used.
func (b *builder) virtualHost(sp servicePort, claimed claims) *routev3.VirtualHost {
	s, port := sp.service, sp.port.Port
	name := b.hostPort(s.FQDN, port)
	domains := b.domains(s, port, claimed)
	routes := b.routes(s, port)
	if len(domains) == 0 {
		b.errs.add(serviceRef(s.Service), "virtual host %s: every domain is used by another service; host skipped", name)
		return nil
	}
	// A domain is made of the service's names, IPs, "*.", ":" and digits:
	// when the names are plain, the domains have no control character.
	if !s.plainNames {
		if err := checkDomains(domains); err != nil {
			b.errs.add(serviceRef(s.Service), "virtual host %s: %v; host skipped", name, err)
			return nil
		}
	}
	vh := b.mem.hosts.new()
	vh.Name, vh.Domains, vh.Routes = name, domains, routes
	return vh
}

// hostPort is "<host>:<port>", stored with the output's strings.
func (b *builder) hostPort(host string, port uint32) string {
	b.scratch = strconv.AppendUint(append(append(b.scratch[:0], host...), ':'), uint64(port), 10)
	return b.mem.text.string(b.scratch)
}

// routes are the rules of the service, or one default route to the port's cluster.
func (b *builder) routes(s *service, port uint32) []*routev3.Route {
	if len(s.Routes) == 0 {
		if idem := b.idempotentDefaultRoute(s, port); idem != nil {
			out := b.mem.routeLists.slice(2)
			out[0], out[1] = idem, b.defaultRoute(s, port)
			return out
		}
		out := b.mem.routeLists.slice(1)
		out[0] = b.defaultRoute(s, port)
		return out
	}
	out := make([]*routev3.Route, 0, len(s.Routes))
	for _, r := range s.Routes {
		if r != nil {
			out = append(out, b.httpRoute(port, r)...)
		}
	}
	return out
}

// defaultRoute sends every request to the port's cluster, with the default
// retries (route_feature_retries.go).
func (b *builder) defaultRoute(s *service, port uint32) *routev3.Route {
	t := b.target(s.FQDN, port, "")
	if t == nil {
		return directResponseRoute("default", matchAll(), 503)
	}
	rt := b.mem.routes.new().clusterRoute("default", sharedMatchAll, t.name)
	rt.GetRoute().HashPolicy = hashPolicy([]*target{t})
	rt.GetRoute().RetryPolicy = sharedDefaultRetryPolicy
	return rt
}

// routeMessages are the four messages of a route to one cluster, allocated
// together (see alloc.go).
type routeMessages struct {
	route   routev3.Route
	action  routev3.Route_Route
	forward routev3.RouteAction
	cluster routev3.RouteAction_Cluster
}

// clusterRoute is clusterRoute(name, m, cluster) in msgs.
func (msgs *routeMessages) clusterRoute(name string, m *routev3.RouteMatch, cluster string) *routev3.Route {
	msgs.cluster.Cluster = cluster
	msgs.forward.ClusterSpecifier, msgs.forward.Timeout = &msgs.cluster, noTimeout()
	msgs.action.Route = &msgs.forward
	msgs.route.Name, msgs.route.Match, msgs.route.Action = name, m, &msgs.action
	return &msgs.route
}

// httpRoute builds a rule, one Envoy route per alternative match. A rule whose
// matches cannot be expressed is reported and left out; a rule whose action
// is invalid is reported and answers 500, so its traffic does not fall
// through to a later rule (the Gateway API's behaviour for invalid backends).
func (b *builder) httpRoute(port uint32, in *ir.HTTPRoute) []*routev3.Route {
	matches, err := routeMatches(in.Matches)
	if err != nil {
		b.errs.add(refOf(in.Source), "route %s: %v; rule skipped", in.Name, err)
		return nil
	}
	out := make([]*routev3.Route, 0, len(matches))
	for _, m := range matches {
		if rt := b.buildRoute(port, in, m); rt != nil {
			out = append(out, rt)
		}
	}
	return out
}

func (b *builder) buildRoute(port uint32, in *ir.HTTPRoute, m *routev3.RouteMatch) *routev3.Route {
	rt := &routev3.Route{Name: in.Name, Match: m}
	err := b.fillRoute(rt, port, in)
	if err == nil {
		err = rt.ValidateAll()
	}
	if err == nil {
		rt.StatPrefix = RouteStatPrefix(in.Name)
		return rt
	}
	rt = directResponseRoute(in.Name, m, 500)
	if rt.ValidateAll() != nil {
		b.errs.add(refOf(in.Source), "route %s: %v; rule skipped", in.Name, err)
		return nil
	}
	b.errs.add(refOf(in.Source), "route %s: %v; rule answers 500", in.Name, err)
	return rt
}

// fillRoute checks a rule, then lets every route feature fill in its route:
// a forwarding rule starts from a route action without a timeout.
func (b *builder) fillRoute(rt *routev3.Route, port uint32, in *ir.HTTPRoute) error {
	if err := checkRule(in); err != nil {
		return err
	}
	r := &sidecarRule{b: b, port: port, in: in, rt: rt}
	if forwards(in) {
		r.action = &routev3.RouteAction{Timeout: noTimeout()}
		rt.Action = &routev3.Route_Route{Route: r.action}
	}
	return r.applyFeatures()
}

func directResponseRoute(name string, m *routev3.RouteMatch, status uint32) *routev3.Route {
	return &routev3.Route{
		Name:   name,
		Match:  m,
		Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: status}},
	}
}

// passthroughHost sends requests for unknown hosts to their original destination.
func passthroughHost() *routev3.VirtualHost {
	return &routev3.VirtualHost{
		Name:    allowAnyVirtualHost,
		Domains: []string{"*"},
		Routes:  []*routev3.Route{clusterRoute(allowAnyVirtualHost, matchAll(), ClusterPassthrough)},
	}
}

// clusterRoute sends every request that matches to one cluster, without a timeout.
func clusterRoute(name string, m *routev3.RouteMatch, cluster string) *routev3.Route {
	return &routev3.Route{
		Name:  name,
		Match: m,
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster},
			Timeout:          noTimeout(),
		}},
	}
}

// noTimeout disables Envoy's 15s default route timeout, as Istio does; rules set their own.
func noTimeout() *durationpb.Duration { return sharedNoTimeout }

// cloneStrings copies a model slice so that output never aliases input.
func cloneStrings(in []string) []string { return slices.Clone(in) }
