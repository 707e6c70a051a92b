package generate

import "github.com/capstanmesh/capstan/xds/ir"

// scopedServices returns, in their order, the services in the proxy's scope
// (ir.Scope) and, transitively, the services their routes send or mirror to,
// so that every cluster a route names is generated. A nil scope is every
// service: all is returned as it is.
func scopedServices(all []*ir.Service, scope *ir.Scope) []*ir.Service {
	if scope == nil {
		return all
	}
	byFQDN := make(map[string]*ir.Service, len(all))
	for _, s := range all {
		if s != nil && byFQDN[s.FQDN] == nil {
			byFQDN[s.FQDN] = s
		}
	}
	in := map[string]bool{}
	var queue []*ir.Service
	mark := func(s *ir.Service) {
		if s != nil && !in[s.FQDN] {
			in[s.FQDN] = true
			queue = append(queue, s)
		}
	}
	for _, s := range all {
		if s != nil && scope.Includes(s) {
			mark(s)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for _, fqdn := range routedTo(s) {
			mark(byFQDN[fqdn])
		}
	}
	out := make([]*ir.Service, 0, len(in))
	for _, s := range all {
		if s != nil && in[s.FQDN] {
			out = append(out, s)
		}
	}
	return out
}

// routedTo lists the FQDNs the service's routes send or mirror to.
func routedTo(s *ir.Service) []string {
	var out []string
	for _, r := range s.Routes {
		for _, d := range r.Destinations {
			out = append(out, d.Service)
		}
		if r.Mirror != nil {
			out = append(out, r.Mirror.Destination.Service)
		}
	}
	return out
}
