package generate

import (
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// httpFilter is one HTTP filter of the HTTP connection managers: its entry in
// the filter chain. One file per filter. A filter's per-route configuration
// belongs to the route feature that uses it (route_feature_*.go).
type httpFilter interface {
	// Name is the filter's Envoy name, also its key in typed_per_filter_config.
	Name() string
	// HCMFilter is the filter's entry in the HTTP connection manager.
	HCMFilter() *hcmv3.HttpFilter
}

// direction says which side of the proxy an HTTP connection manager serves.
type direction int

const (
	outbound direction = iota
	inbound
)

// httpFilters is the one place that sets which HTTP filters run, and in what
// order, for each direction. The router is always last.
func httpFilters(d direction) []httpFilter {
	if d == outbound {
		return []httpFilter{faultFilter{}, routerFilter{}}
	}
	return []httpFilter{routerFilter{}}
}

// filtersOf caches httpFilters per direction.
var filtersOf = [...][]httpFilter{outbound: httpFilters(outbound), inbound: httpFilters(inbound)}

// hcmFilters lists the HCM entries of a direction's filters.
func hcmFilters(d direction) []*hcmv3.HttpFilter {
	fs := filtersOf[d]
	out := make([]*hcmv3.HttpFilter, len(fs))
	for i, f := range fs {
		out[i] = f.HCMFilter()
	}
	return out
}
