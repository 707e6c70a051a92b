package runner

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/go-logr/logr"

	"github.com/capstanmesh/capstan/xds/ir"
)

// A mesh change, as a function returning a changed copy (nil: not applicable).
type meshChange struct {
	name  string
	apply func(*ir.Mesh) *ir.Mesh
}

var incrementalChanges = []meshChange{
	{"endpoint", moveFirstEndpoint},
	{"route weights", withRouteWeightsSwapped},
	{"new service", withServiceAdded},
	{"service removed", withLastServiceRemoved},
}

// The incremental path (patched outbound parts, reused assemblies) publishes
// to every sidecar exactly what a whole generation (ForProxy) gives, with
// the same per-object errors, after each kind of change applied one after
// the other, for every test mesh; and it is taken (parts are patched, not
// generated whole) for each kind of change on some of them.
func TestIncrementalEqualsFull(t *testing.T) {
	patched := map[string]int{}
	for i, mesh := range testMeshes(t) {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			pub, table := newCapturingPublisher(), newProxyTable()
			_ = table.update(mesh, pub, logr.Discard())
			checkEqualsForProxy(t, mesh, pub, table)
			for _, c := range incrementalChanges {
				next := c.apply(mesh)
				if next == nil {
					continue
				}
				mesh = next
				_ = table.update(mesh, pub, logr.Discard())
				checkEqualsForProxy(t, mesh, pub, table)
				patched[c.name] += table.lastParts.patched
				if table.lastParts.whole+table.lastParts.patched+table.lastParts.kept == 0 && hasSidecars(mesh) {
					t.Errorf("%s: no outbound part brought up to date", c.name)
				}
			}
		})
	}
	for _, c := range incrementalChanges {
		if patched[c.name] == 0 {
			t.Errorf("%s: no outbound part was patched on any mesh: the incremental path is never taken", c.name)
		}
	}
}

func hasSidecars(m *ir.Mesh) bool {
	return slices.ContainsFunc(m.Proxies, func(p *ir.Proxy) bool { return p.Kind == ir.ProxySidecar })
}

// withRouteWeightsSwapped swaps the weights of the first two destinations
// of the first route that has two with different weights.
func withRouteWeightsSwapped(m *ir.Mesh) *ir.Mesh {
	for i, s := range m.Services {
		if s == nil {
			continue
		}
		for j, r := range s.Routes {
			if r == nil || len(r.Destinations) < 2 || r.Destinations[0] == nil || r.Destinations[1] == nil ||
				r.Destinations[0].Weight == r.Destinations[1].Weight {
				continue
			}
			route := *r
			route.Destinations = slices.Clone(r.Destinations)
			d0, d1 := *r.Destinations[0], *r.Destinations[1]
			d0.Weight, d1.Weight = d1.Weight, d0.Weight
			route.Destinations[0], route.Destinations[1] = &d0, &d1
			svc := *s
			svc.Routes = slices.Clone(s.Routes)
			svc.Routes[j] = &route
			return withService(m, i, &svc)
		}
	}
	return nil
}

// withServiceAdded adds a copy of the first service under a new name, with
// a cluster IP of its own and no routes.
func withServiceAdded(m *ir.Mesh) *ir.Mesh {
	i := slices.IndexFunc(m.Services, func(s *ir.Service) bool { return s != nil && s.FQDN != "" && !s.Headless })
	if i < 0 {
		return nil
	}
	s := *m.Services[i]
	s.Name += "-new"
	s.FQDN = s.Name + strings.TrimPrefix(s.FQDN, m.Services[i].Name)
	s.ClusterIPs = []string{"10.255.255.1"}
	s.Routes, s.RouteSource = nil, nil
	next := *m
	next.Services = append(slices.Clone(m.Services), &s)
	slices.SortStableFunc(next.Services, func(a, b *ir.Service) int { return strings.Compare(fqdnOf(a), fqdnOf(b)) })
	return &next
}

func fqdnOf(s *ir.Service) string {
	if s == nil {
		return ""
	}
	return s.FQDN
}

// withLastServiceRemoved drops the last service.
func withLastServiceRemoved(m *ir.Mesh) *ir.Mesh {
	if len(m.Services) < 2 {
		return nil
	}
	next := *m
	next.Services = slices.Clone(m.Services[:len(m.Services)-1])
	return &next
}

// withService is a copy of the mesh with service i replaced.
func withService(m *ir.Mesh, i int, s *ir.Service) *ir.Mesh {
	next := *m
	next.Services = slices.Clone(m.Services)
	next.Services[i] = s
	return &next
}
