package generate

import (
	"fmt"

	"github.com/capstanmesh/capstan/xds/ir"
)

// Selection picks the outbound resources of a sidecar that Partial
// generates. The runner works it out from ir.Changes (incremental
// generation, docs/generate.md).
type Selection struct {
	// Services are FQDNs whose clusters and load assignments are generated.
	Services map[string]bool
	// Endpoints are FQDNs whose load assignments alone are generated.
	Endpoints map[string]bool
	// RoutePorts are the ports whose route configurations are generated;
	// AllRoutes generates every one.
	RoutePorts map[uint32]bool
	AllRoutes  bool
	// Listeners generates every listener of the proxy.
	Listeners bool
}

// needsAllClusters reports whether the selection needs every outbound
// cluster built (routes name them and listeners use them), or only the
// selected services'.
func (s *Selection) needsAllClusters() bool {
	return s.AllRoutes || len(s.RoutePorts) > 0 || s.Listeners
}

// Partial generates the selected resources of a sidecar: each is exactly
// the message ForProxy returns under its name, and a selected resource that
// ForProxy would not return is absent. Clusters and load assignments are
// those of selected services only; listeners, when selected, are all of the
// proxy's. Errors are those ForProxy reports for what Partial generated, and
// the per-object errors of the other parts it has to look at (every
// cluster, when routes or listeners are selected); a caller that needs
// ForProxy's errors exactly uses ForProxy when Partial reports any.
// The output is not reference-checked: it is a part of a config.
func Partial(mesh *ir.Mesh, proxy *ir.Proxy, sel Selection) (*Resources, error) {
	if err := checkInputs(mesh, proxy); err != nil {
		return nil, err
	}
	b := newBuilder(mesh, proxy)
	b.sel = &sel
	b.outboundClusters()
	if sel.needsAllClusters() {
		// Listeners ask which ports have route configurations.
		b.outboundRoutes()
	}
	if sel.Listeners {
		b.outboundListeners()
		b.inbound()
		b.static()
		b.traceCollector()
		b.out.Clusters = b.out.Clusters[:0]
		b.keepSelectedClusters()
	}
	if b.fatal != nil {
		return nil, fmt.Errorf("generate %s: %w", proxy.ID, b.fatal)
	}
	b.out.sort()
	return b.out, b.errs.err()
}

// keepSelectedClusters puts back, after listeners were generated (which
// adds fixed clusters), the clusters of the selected services only.
func (b *builder) keepSelectedClusters() {
	b.out.Clusters = append(b.out.Clusters, b.selectedClusters...)
}

// skipsService reports whether outboundClusters can leave a service out.
func (b *builder) skipsService(s *service) bool {
	return b.sel != nil && !b.sel.needsAllClusters() && !b.sel.Services[s.FQDN] && !b.sel.Endpoints[s.FQDN]
}

// keepsCluster and keepsLoadAssignment report whether a service's cluster
// and load assignment go into the output.
func (b *builder) keepsCluster(s *service) bool {
	return b.sel == nil || b.sel.Services[s.FQDN]
}

func (b *builder) keepsLoadAssignment(s *service) bool {
	return b.sel == nil || b.sel.Services[s.FQDN] || b.sel.Endpoints[s.FQDN]
}

// keepsRoutes reports whether the route configuration of a port goes into the output.
func (b *builder) keepsRoutes(port uint32) bool {
	return b.sel == nil || b.sel.AllRoutes || b.sel.RoutePorts[port]
}
