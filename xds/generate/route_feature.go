package generate

import (
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// routeFeature is one thing a MeshRoute rule can ask for (retries, a fault, a
// rewrite…): the ir.HTTPRoute fields it handles, what it does to a sidecar's
// route, what it does to a proxyless gRPC client's route, and what it refuses.
// One file per feature (route_feature_*.go); routeFeatures lists them in the
// order both generators apply them. A new ir.HTTPRoute field is handled by a
// feature (or listed in structuralRouteFields): TestEveryRouteFieldHasAFeature
// fails otherwise.
type routeFeature interface {
	// name names the feature in tests and messages.
	name() string
	// fields are the ir.HTTPRoute fields the feature handles, each with its
	// support by proxyless gRPC clients; docs/proxyless-grpc.md's table is
	// rendered from them.
	fields() []routeField
	// check refuses a rule that passes ValidateAll but that Envoy would refuse
	// when loading it. Both generators run every check before building.
	check(in *ir.HTTPRoute) error
	// sidecar applies the feature to a sidecar's route for the rule.
	sidecar(r *sidecarRule) error
	// grpc applies the feature to a proxyless gRPC client's route for the rule.
	grpc(r *grpcRule) error
}

// routeFeatures is the one list of route features, in the order they are
// checked and applied, and their gRPC warnings reported. The order is
// observable: a rule reports its first failed check (durations before
// header edits); retries come before destinations because gRPC reports its
// retryOn warnings even for a rule whose destination is missing; hash comes
// after destinations, whose clusters it reads. A part a feature drops
// (sidecarRule.dropped, a missing mirror cluster) is reported only when
// every feature applied, so its place in the list does not matter.
var routeFeatures = []routeFeature{
	timeoutFeature{},
	retriesFeature{},
	destinationsFeature{},
	faultFeature{},
	mirrorFeature{},
	rewriteFeature{},
	headersFeature{},
	redirectFeature{},
	hashFeature{},
}

// structuralRouteFields are the ir.HTTPRoute fields that no feature handles
// because every rule has them: its name, its source object and its matches
// (one Envoy route per match, see route_match.go).
var structuralRouteFields = []string{"name", "source", "matches"}

// grpcSupport says what a proxyless gRPC client gets of a field.
type grpcSupport int

const (
	// grpcSent: the field is sent as it is for sidecars.
	grpcSent grpcSupport = iota
	// grpcAdapted: the field is sent in gRPC's terms (routeField.note says how).
	grpcAdapted
	// grpcNotSent: the field is left out, with a warning on the object.
	grpcNotSent
	// grpcFailsCalls: gRPC cannot do it; the rule fails the calls it matches, with a warning.
	grpcFailsCalls
)

// routeField is one field a feature handles and its proxyless gRPC support.
type routeField struct {
	// path is the field's JSON path in ir.HTTPRoute ("retries.perTryTimeout"),
	// also its name in warnings; empty for a feature that reads no rule field.
	path string
	// api is the field as MeshRoute spells it, when that differs from path.
	api string
	// grpc is the support by proxyless gRPC clients, note how or why.
	grpc grpcSupport
	note string
}

// sidecarRule is one sidecar route being built from a rule; the features fill it in.
type sidecarRule struct {
	b    *builder
	port uint32
	in   *ir.HTTPRoute
	rt   *routev3.Route
	// action is the forwarding action, nil when the rule does not forward (a redirect).
	action *routev3.RouteAction
	// targets are the destinations' clusters, set by the destinations feature.
	targets []*target
	// dropped are parts left out of the route, reported once the route is built.
	dropped []string
}

// grpcRule is one proxyless gRPC route being built from a rule; the features fill it in.
type grpcRule struct {
	g    *grpcBuilder
	port uint32
	in   *ir.HTTPRoute
	rt   *routev3.Route
	// action is the forwarding action, nil when the rule does not forward (a redirect).
	action *routev3.RouteAction
	// targets are the destinations' clusters, set by the destinations feature.
	targets []*grpcTarget
}

// checkRule rejects rules that pass ValidateAll but that Envoy would refuse
// when loading them (and with them the whole route configuration).
func checkRule(in *ir.HTTPRoute) error {
	if err := in.Validate(); err != nil {
		return err
	}
	for _, f := range routeFeatures {
		if err := f.check(in); err != nil {
			return err
		}
	}
	return nil
}

// applyFeatures lets every feature fill in a sidecar route, then
// reports the parts that were dropped from it.
func (r *sidecarRule) applyFeatures() error {
	for _, f := range routeFeatures {
		if err := f.sidecar(r); err != nil {
			return err
		}
	}
	for _, msg := range r.dropped {
		r.b.errs.add(refOf(r.in.Source), "route %s: %s", r.in.Name, msg)
	}
	return nil
}

// applyFeatures lets every feature fill in a gRPC route.
func (r *grpcRule) applyFeatures() error {
	for _, f := range routeFeatures {
		if err := f.grpc(r); err != nil {
			return err
		}
	}
	return nil
}

// grpcWarner is a feature with warnings for gRPC clients beyond its fields'
// support (retries above gRPC's cap, say), reported with warnRule's.
type grpcWarner interface {
	warnGRPC(g *grpcBuilder, in *ir.HTTPRoute)
}

// warnRule reports each field of a rule that gRPC clients do not get, as the
// features' fields say, and each feature's own warnings.
func (g *grpcBuilder) warnRule(in *ir.HTTPRoute) {
	src := refOf(in.Source)
	for _, f := range routeFeatures {
		for _, fld := range f.fields() {
			g.warnField(src, in, fld)
		}
		if w, ok := f.(grpcWarner); ok {
			w.warnGRPC(g, in)
		}
	}
}

// warnField reports a field of the rule that gRPC clients do not get, if set.
func (g *grpcBuilder) warnField(src *ir.ObjectRef, in *ir.HTTPRoute, fld routeField) {
	switch {
	case fld.grpc == grpcNotSent && routeFieldSet(in, fld.path):
		g.errs.warn(src, "route %s: %s is %s", in.Name, fld.path, notSent)
	case fld.grpc == grpcFailsCalls && routeFieldSet(in, fld.path):
		g.errs.warn(src, "route %s: %s is not supported by proxyless gRPC clients; the rule fails their calls", in.Name, fld.path)
	}
}

// RouteFeatureFields lists the ir.HTTPRoute fields that route features
// handle, as JSON paths ("retries.perTryTimeout"), in feature order: what
// a builder of test models must set for every feature to be exercised.
func RouteFeatureFields() []string {
	var out []string
	for _, f := range routeFeatures {
		for _, fld := range f.fields() {
			if fld.path != "" {
				out = append(out, fld.path)
			}
		}
	}
	return out
}
