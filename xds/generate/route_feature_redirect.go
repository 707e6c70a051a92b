package generate

import (
	"fmt"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// redirectFeature answers with an HTTP redirect instead of forwarding. gRPC
// cannot follow one: its clients get a route that fails the calls it matches.
type redirectFeature struct{}

func (redirectFeature) name() string { return "redirect" }

func (redirectFeature) fields() []routeField {
	return []routeField{{path: "redirect", grpc: grpcFailsCalls,
		note: "the rule fails the calls it matches (a non-forwarding route: UNAVAILABLE), with a warning"}}
}

func (redirectFeature) check(*ir.HTTPRoute) error { return nil }

func (redirectFeature) sidecar(r *sidecarRule) error {
	if r.in.Redirect == nil {
		return nil
	}
	a, err := redirectAction(r.in.Redirect)
	if err != nil {
		return err
	}
	r.rt.Action = &routev3.Route_Redirect{Redirect: a}
	return nil
}

func (redirectFeature) grpc(r *grpcRule) error {
	if r.in.Redirect != nil {
		r.rt.Action = &routev3.Route_NonForwardingAction{NonForwardingAction: &routev3.NonForwardingAction{}}
	}
	return nil
}

// forwards says whether a rule forwards its requests (a route action) rather
// than answering them itself (a redirect).
func forwards(in *ir.HTTPRoute) bool { return in.Redirect == nil }

// redirectCodes maps HTTP status codes to Envoy's redirect codes; 0 means 301.
var redirectCodes = map[uint32]routev3.RedirectAction_RedirectResponseCode{
	0:   routev3.RedirectAction_MOVED_PERMANENTLY,
	301: routev3.RedirectAction_MOVED_PERMANENTLY,
	302: routev3.RedirectAction_FOUND,
	303: routev3.RedirectAction_SEE_OTHER,
	307: routev3.RedirectAction_TEMPORARY_REDIRECT,
	308: routev3.RedirectAction_PERMANENT_REDIRECT,
}

func redirectAction(r *ir.Redirect) (*routev3.RedirectAction, error) {
	code, ok := redirectCodes[r.Code]
	if !ok {
		return nil, fmt.Errorf("redirect code %d is not one of 301, 302, 303, 307, 308", r.Code)
	}
	a := &routev3.RedirectAction{HostRedirect: r.Authority, ResponseCode: code}
	if r.Path != "" {
		a.PathRewriteSpecifier = &routev3.RedirectAction_PathRedirect{PathRedirect: r.Path}
	}
	return a, nil
}
