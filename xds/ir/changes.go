package ir

import (
	"reflect"
	"runtime"
	"slices"
	"sync"
)

// Changes says what differs between the services of two meshes (Diff), in
// the terms incremental generation works in: the load assignments of a
// service, the route configurations of its ports, a service's own
// resources. Proxies are not compared: the runner keys each proxy's own
// config by the proxy.
type Changes struct {
	// Full is set when anything but services and proxies changed (a
	// mesh-wide setting), when there is no previous mesh, or when FQDNs
	// repeat: everything is generated again.
	Full bool `json:"full,omitempty"`
	// Endpoints are the services (FQDNs) whose endpoints changed and,
	// unless they are in Routes too, nothing else. Headless services are
	// never here: their endpoints are listener addresses (Changed).
	Endpoints []string `json:"endpoints,omitempty"`
	// Routes are the services whose routes changed in a way that touches
	// their ports' route configurations only: the routes send and mirror
	// to the same services as before and neither the old nor the new ones
	// set a retry budget (which shapes the destination clusters).
	Routes []string `json:"routes,omitempty"`
	// Added and Removed are services that are new or gone.
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
	// Changed are services that changed in any other way (ports, policy,
	// subsets, identities, ...), and services that came or went with
	// routes that set a retry budget (which shapes other services' clusters).
	Changed []string `json:"changed,omitempty"`
}

// Empty reports whether no service and no mesh-wide setting changed.
func (c *Changes) Empty() bool {
	return !c.Full && len(c.Endpoints) == 0 && len(c.Routes) == 0 && len(c.Added) == 0 &&
		len(c.Removed) == 0 && len(c.Changed) == 0
}

// Diff compares two meshes' services and mesh-wide settings. Lists are
// sorted; a service is compared with the previous one of the same FQDN.
func Diff(prev, next *Mesh) Changes {
	if prev == nil || next == nil || !sameSettings(prev, next) {
		return Changes{Full: true}
	}
	before, ok := servicesByFQDN(prev.Services)
	after, ok2 := servicesByFQDN(next.Services)
	if !ok || !ok2 {
		return Changes{Full: true}
	}
	c := classifyAll(before, next.Services)
	for _, s := range next.Services {
		if before[s.FQDN] == nil {
			c.addOrRemove(&c.Added, s)
		}
	}
	for _, s := range prev.Services {
		if after[s.FQDN] == nil {
			c.addOrRemove(&c.Removed, s)
		}
	}
	for _, list := range []*[]string{&c.Endpoints, &c.Routes, &c.Added, &c.Removed, &c.Changed} {
		slices.Sort(*list)
	}
	return c
}

// classifyAll classifies every service of services that before holds too,
// in one chunk per core: comparing the unchanged services is most of a
// diff's cost. The lists come out unsorted.
func classifyAll(before map[string]*Service, services []*Service) Changes {
	workers := max(1, min(runtime.GOMAXPROCS(0), len(services)/minServicesPerWorker))
	parts := make([]Changes, workers)
	size := (len(services) + workers - 1) / workers
	var wg sync.WaitGroup
	for w := range workers {
		chunk := services[min(w*size, len(services)):min((w+1)*size, len(services))]
		wg.Go(func() {
			for _, s := range chunk {
				if old := before[s.FQDN]; old != nil && old != s {
					parts[w].classify(old, s)
				}
			}
		})
	}
	wg.Wait()
	var c Changes
	for _, p := range parts {
		c.Endpoints = append(c.Endpoints, p.Endpoints...)
		c.Routes = append(c.Routes, p.Routes...)
		c.Changed = append(c.Changed, p.Changed...)
	}
	return c
}

// minServicesPerWorker keeps small diffs on one goroutine.
const minServicesPerWorker = 128

// sameSettings compares everything but services and proxies.
func sameSettings(a, b *Mesh) bool {
	x, y := *a, *b
	x.Services, x.Proxies, y.Services, y.Proxies = nil, nil, nil, nil
	return reflect.DeepEqual(&x, &y)
}

// servicesByFQDN indexes services; false when an FQDN is empty or repeats,
// or a service is nil.
func servicesByFQDN(services []*Service) (map[string]*Service, bool) {
	out := make(map[string]*Service, len(services))
	for _, s := range services {
		if s == nil || s.FQDN == "" || out[s.FQDN] != nil {
			return nil, false
		}
		out[s.FQDN] = s
	}
	return out, true
}

// addOrRemove records a service that came or went in list, or in Changed
// when its routes set a retry budget.
func (c *Changes) addOrRemove(list *[]string, s *Service) {
	if hasRetryBudget(s.Routes) {
		list = &c.Changed
	}
	*list = append(*list, s.FQDN)
}

// classify records how a service of the same FQDN changed, if it did.
func (c *Changes) classify(old, s *Service) {
	if reflect.DeepEqual(old, s) {
		return
	}
	a, b := *old, *s
	endpoints := !reflect.DeepEqual(a.Endpoints, b.Endpoints)
	routes := !reflect.DeepEqual(a.Routes, b.Routes)
	a.Endpoints, b.Endpoints, a.Routes, b.Routes = nil, nil, nil, nil
	switch {
	case !reflect.DeepEqual(&a, &b), endpoints && (old.Headless || s.Headless), routes && !localRouteChange(old.Routes, s.Routes):
		c.Changed = append(c.Changed, s.FQDN)
		return
	}
	if endpoints {
		c.Endpoints = append(c.Endpoints, s.FQDN)
	}
	if routes {
		c.Routes = append(c.Routes, s.FQDN)
	}
}

// localRouteChange reports whether new routes replacing old ones change
// only the route configurations they are in: the same destination and
// mirror services (which decide what a scoped sidecar holds), and no retry
// budget on either side (budgets shape the destination clusters).
func localRouteChange(old, routes []*HTTPRoute) bool {
	if hasRetryBudget(old) || hasRetryBudget(routes) {
		return false
	}
	return slices.Equal(routeTargets(old), routeTargets(routes))
}

func hasRetryBudget(routes []*HTTPRoute) bool {
	for _, r := range routes {
		if r != nil && r.Retries != nil && r.Retries.Budget != nil {
			return true
		}
	}
	return false
}

// routeTargets are the services routes send or mirror to, sorted, once each.
func routeTargets(routes []*HTTPRoute) []string {
	var out []string
	for _, r := range routes {
		if r == nil {
			continue
		}
		for _, d := range r.Destinations {
			if d != nil {
				out = append(out, d.Service)
			}
		}
		if r.Mirror != nil {
			out = append(out, r.Mirror.Destination.Service)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
