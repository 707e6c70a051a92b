package generate

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// allowAnyVirtualHost is the catch-all host of every outbound route
// configuration: requests for hosts outside the mesh pass through.
const allowAnyVirtualHost = "allow_any"

// outboundRoutes adds one RouteConfiguration per outbound HTTP port, named by the port.
func (b *builder) outboundRoutes() {
	for _, pg := range b.portGroups() {
		if len(pg.http) == 0 {
			continue
		}
		rc := b.routeConfig(pg)
		if err := validateRouteConfig(rc); err != nil {
			// Every rule and host was checked on its own: this is a bug.
			b.fail(fmt.Errorf("route configuration %s: %w", rc.Name, err))
			continue
		}
		b.out.Routes = append(b.out.Routes, rc)
		b.routeNames[rc.Name] = true
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
	claimed := make(map[string]bool, 6*len(pg.http)+1)
	claimed["*"] = true
	for _, sp := range pg.http {
		if vh := b.virtualHost(sp, claimed); vh != nil {
			rc.VirtualHosts = append(rc.VirtualHosts, vh)
		}
	}
	rc.VirtualHosts = append(rc.VirtualHosts, passthroughHost())
	return rc
}

// virtualHost routes one service port; nil (reported) when it cannot be used.
func (b *builder) virtualHost(sp servicePort, claimed map[string]bool) *routev3.VirtualHost {
	s, port := sp.service, sp.port.Port
	vh := &routev3.VirtualHost{
		Name:    s.FQDN + ":" + strconv.FormatUint(uint64(port), 10),
		Domains: b.domains(s, port, claimed),
		Routes:  b.routes(s, port),
	}
	if len(vh.Domains) == 0 {
		b.errs.add(serviceRef(s.Service), "virtual host %s: every domain is used by another service; host skipped", vh.Name)
		return nil
	}
	// The rules were validated one by one and the whole route configuration
	// is validated when added; only the domains are left to check here.
	if err := checkDomains(vh.Domains); err != nil {
		b.errs.add(serviceRef(s.Service), "virtual host %s: %v; host skipped", vh.Name, err)
		return nil
	}
	return vh
}

// validateRouteConfig is rc.ValidateAll() with one rule applied differently:
// the domains of virtual hosts, checked by checkDomains when each host is
// built, stand aside for the ValidateAll pass (a placeholder takes their
// place, then they are put back). PGV checks each domain with a regular
// expression, and that is most of the cost of validating the configuration
// of a large mesh. Resources.Validate, which the tests and the fuzz target
// run on every output, applies the plain ValidateAll.
func validateRouteConfig(rc *routev3.RouteConfiguration) error {
	domains := make([][]string, len(rc.VirtualHosts))
	for i, vh := range rc.VirtualHosts {
		domains[i], vh.Domains = vh.Domains, placeholderDomains
	}
	err := rc.ValidateAll()
	for i, vh := range rc.VirtualHosts {
		vh.Domains = domains[i]
	}
	return err
}

// placeholderDomains stand in for checked domains in validateRouteConfig.
var placeholderDomains = []string{"*"}

// checkDomains applies the rule ValidateAll applies to domains (no NUL, CR or
// LF) without its regular expression, which is the costliest part of
// validating a large route configuration.
func checkDomains(domains []string) error {
	if len(domains) == 0 {
		return errors.New("no domains")
	}
	for _, d := range domains {
		if strings.ContainsAny(d, "\x00\r\n") {
			return fmt.Errorf("domain %q contains a control character", d)
		}
	}
	return nil
}

// domains are the names a client may use for the service: name (only from
// the proxy's own namespace, as DNS search paths resolve it there),
// name.namespace, name.namespace.svc, the FQDN, "*.<fqdn>" for the pods of a
// headless service, and the cluster IPs, each bare and with ":port". Domains
// already claimed are left out.
func (b *builder) domains(s *service, port uint32, claimed map[string]bool) []string {
	hosts := b.hostNames(s)
	suffix := ":" + strconv.FormatUint(uint64(port), 10)
	// One string holds every domain and each domain is a substring of it: one
	// allocation instead of one per domain.
	var buf strings.Builder
	buf.Grow(2*len(hosts)*(len(s.FQDN)+len(suffix)) + 16)
	ends := make([]int, 0, 2*len(hosts))
	for _, h := range hosts {
		// A host claims its ":port" form with it: within one route
		// configuration (one port) "a:port" and "b:port" clash only if a and b do.
		if !claim(claimed, h) {
			continue
		}
		buf.WriteString(h)
		ends = append(ends, buf.Len())
		buf.WriteString(h)
		buf.WriteString(suffix)
		ends = append(ends, buf.Len())
	}
	all, start := buf.String(), 0
	out := make([]string, len(ends))
	for i, end := range ends {
		out[i], start = all[start:end], end
	}
	return out
}

// hostNames are the service's names and cluster IPs, without a port.
func (b *builder) hostNames(s *service) []string {
	hosts := make([]string, 0, 5+len(s.ips))
	if s.Name != "" && s.Namespace != "" {
		if s.Namespace == b.proxy.Namespace {
			hosts = append(hosts, s.Name)
		}
		hosts = append(hosts, s.Name+"."+s.Namespace, s.Name+"."+s.Namespace+".svc")
	}
	hosts = append(hosts, s.FQDN)
	if s.Headless {
		// StatefulSet pods are reached as <pod>.<fqdn>.
		hosts = append(hosts, "*."+s.FQDN)
	}
	for _, ip := range s.ips {
		hosts = append(hosts, ipHost(ip))
	}
	return hosts
}

// claim reports whether no earlier host claimed h, and claims it. Envoy
// compares domains case-insensitively. A name with a colon (not a bracketed
// IPv6 address) is never claimed: it could clash with another's ":port" form.
func claim(claimed map[string]bool, h string) bool {
	if strings.Contains(h, ":") && !strings.HasPrefix(h, "[") {
		return false
	}
	key := strings.ToLower(h)
	if claimed[key] {
		return false
	}
	claimed[key] = true
	return true
}

// ipHost is an IP as it appears in a Host header without a port.
func ipHost(ip netip.Addr) string {
	if ip.Is6() {
		return "[" + ip.String() + "]"
	}
	return ip.String()
}

// routes are the rules of the service, or one default route to the port's cluster.
func (b *builder) routes(s *service, port uint32) []*routev3.Route {
	if len(s.Routes) == 0 {
		return []*routev3.Route{b.defaultRoute(s, port)}
	}
	out := make([]*routev3.Route, 0, len(s.Routes))
	for _, r := range s.Routes {
		if r != nil {
			out = append(out, b.httpRoute(port, r)...)
		}
	}
	return out
}

// defaultRoute sends every request to the port's cluster.
func (b *builder) defaultRoute(s *service, port uint32) *routev3.Route {
	name := clusterName(s.FQDN, port, "")
	t := b.targets[name]
	if t == nil {
		return directResponseRoute("default", matchAll(), 503)
	}
	return &routev3.Route{
		Name:  "default",
		Match: sharedMatchAll,
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: name},
			Timeout:          noTimeout(),
			HashPolicy:       hashPolicy([]*target{t}),
		}},
	}
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

// fillRoute sets the action, header edits and per-filter config of a rule.
func (b *builder) fillRoute(rt *routev3.Route, port uint32, in *ir.HTTPRoute) error {
	if err := checkRule(in); err != nil {
		return err
	}
	if in.Redirect != nil {
		a, err := redirectAction(in.Redirect)
		if err != nil {
			return err
		}
		rt.Action = &routev3.Route_Redirect{Redirect: a}
	} else {
		a, err := b.routeAction(port, in)
		if err != nil {
			return err
		}
		rt.Action = &routev3.Route_Route{Route: a}
	}
	setHeaderEdits(rt, in.RequestHeaders, in.ResponseHeaders)
	return patchRoute(outbound, rt, in)
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
