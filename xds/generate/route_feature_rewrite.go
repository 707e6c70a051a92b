package generate

import (
	"errors"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// rewriteFeature replaces the matched prefix or the whole path, and the
// authority, before forwarding.
type rewriteFeature struct{}

func (rewriteFeature) name() string { return "rewrite" }

func (rewriteFeature) fields() []routeField {
	return []routeField{{path: "rewrite", grpc: grpcNotSent, note: "gRPC's xDS support has no path or authority rewrite"}}
}

func (rewriteFeature) check(*ir.HTTPRoute) error { return nil }

func (rewriteFeature) sidecar(r *sidecarRule) error {
	if r.action == nil {
		return nil
	}
	return setRewrite(r.action, r.in.Rewrite)
}

func (rewriteFeature) grpc(*grpcRule) error { return nil }

// setRewrite replaces the matched prefix or the whole path, and the authority.
func setRewrite(a *routev3.RouteAction, rw *ir.Rewrite) error {
	if rw == nil {
		return nil
	}
	if rw.Prefix != "" && rw.FullPath != "" {
		return errors.New("rewrite sets both prefix and fullPath")
	}
	a.PrefixRewrite = rw.Prefix
	if rw.FullPath != "" {
		a.RegexRewrite = &matcherv3.RegexMatchAndSubstitute{
			Pattern:      &matcherv3.RegexMatcher{Regex: "^/.*$"},
			Substitution: rw.FullPath,
		}
	}
	if rw.Authority != "" {
		a.HostRewriteSpecifier = &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: rw.Authority}
	}
	return nil
}
