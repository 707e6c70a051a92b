// Package generate turns the mesh model (ir.Mesh) into the Envoy v3 resources
// of one sidecar: listeners, routes, clusters and endpoints. It is a pure
// function of its inputs — no I/O, no clocks, no mutation of the model — and
// its output is deterministic: resources are sorted by name and every slice is
// built in input order.
//
// Files are split by concern (listener_outbound.go, listener_inbound.go,
// listener_static.go, cluster.go, cluster_policy.go, route.go,
// route_domains.go, route_match.go, endpoints.go, tls.go, alloc.go), by
// HTTP filter (filter_*.go, each implementing httpFilter; the order is set in
// httpFilters) and by route feature (route_feature_*.go, each implementing
// routeFeature for both the sidecar and the proxyless gRPC generator; the
// order is set in routeFeatures).
//
// Every resource is valid: each part taken from the model is checked as it is
// built — with ValidateAll, or with cheaper equivalent checks for resources
// made only of checked parts (docs/generate.md lists which) — and the whole
// set passes a reference check before it is returned.
// Problems caused by one API object are reported as *Error values naming that
// object; generation goes on for everything else (see ForProxy).
package generate
