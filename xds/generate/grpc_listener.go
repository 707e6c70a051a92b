package generate

import (
	"fmt"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// listenersAndRoutes adds, per service port, a route configuration named
// <fqdn>:<port> and an API listener for each name the client may dial for
// it; names already taken by an earlier service (by FQDN) are left out.
func (g *grpcBuilder) listenersAndRoutes() {
	claimed := map[string]bool{}
	for _, s := range g.services {
		for _, p := range s.ports {
			names := g.claimNames(s, p.Port, claimed)
			if len(names) == 0 {
				continue
			}
			rc, err := g.routeConfig(s, p.Port, names)
			if err != nil {
				g.errs.add(serviceRef(s.Service), "route configuration %s: %v; not sent to proxyless gRPC clients", rc.GetName(), err)
				continue
			}
			if err := g.addListeners(rc.Name, names); err != nil {
				g.errs.add(serviceRef(s.Service), "listeners of %s: %v; not sent to proxyless gRPC clients", rc.Name, err)
				continue
			}
			g.out.Routes = append(g.out.Routes, rc)
		}
	}
}

// grpcHosts are the names a client may dial a service by: the FQDN,
// <name>.<namespace>.svc, <name>.<namespace>, and <name> for a client in the
// service's namespace — each with the port, as xds:///<host>:<port>.
func grpcHosts(s *grpcService, proxyNamespace string) []string {
	hosts := []string{s.FQDN}
	if s.Name == "" || s.Namespace == "" {
		return hosts
	}
	hosts = append(hosts, s.Name+"."+s.Namespace+".svc", s.Name+"."+s.Namespace)
	if s.Namespace == proxyNamespace {
		hosts = append(hosts, s.Name)
	}
	return hosts
}

// claimNames returns the host:port names of a service port not yet claimed,
// and claims them.
func (g *grpcBuilder) claimNames(s *grpcService, port uint32, claimed map[string]bool) []string {
	var out []string
	for _, h := range grpcHosts(s, g.proxy.Namespace) {
		name := grpcHostPort(h, port)
		if claimed[name] {
			continue
		}
		claimed[name] = true
		out = append(out, name)
	}
	if len(out) == 0 {
		g.errs.add(serviceRef(s.Service), "port %d: every name is used by another service; not sent to proxyless gRPC clients", port)
	}
	return out
}

// addListeners adds one API listener per name, all with one HTTP connection
// manager: RDS over ADS for routeConfig, the fault filter, then the router.
func (g *grpcBuilder) addListeners(routeConfig string, names []string) error {
	hcm, err := pack(&hcmv3.HttpConnectionManager{
		StatPrefix: routeConfig,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource:    ads(),
			RouteConfigName: routeConfig,
		}},
		HttpFilters: hcmFilters(outbound),
	})
	if err != nil {
		return err
	}
	listeners := make([]*listenerv3.Listener, 0, len(names))
	for _, name := range names {
		l := &listenerv3.Listener{Name: name, ApiListener: &listenerv3.ApiListener{ApiListener: hcm}}
		if err := l.ValidateAll(); err != nil {
			return fmt.Errorf("listener %s: %w", name, err)
		}
		listeners = append(listeners, l)
	}
	g.out.Listeners = append(g.out.Listeners, listeners...)
	return nil
}
