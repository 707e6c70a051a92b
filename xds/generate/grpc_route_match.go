package generate

import (
	"github.com/capstanmesh/capstan/xds/ir"
)

// grpcMatches are the rule's alternative matches that a gRPC call can meet:
// a call has no query string, and its method is always POST, which is then
// dropped from the match. false when the rule had alternatives and none is left.
func (g *grpcBuilder) grpcMatches(in *ir.HTTPRoute) ([]*ir.Match, bool) {
	if len(in.Matches) == 0 {
		return nil, true
	}
	out := make([]*ir.Match, 0, len(in.Matches))
	for i, m := range in.Matches {
		switch {
		case m == nil:
			out = append(out, m)
		case len(m.QueryParams) > 0:
			g.errs.warn(refOf(in.Source), "route %s: match %d: queryParams never match a gRPC call; the match is not sent to proxyless gRPC clients", in.Name, i)
		case m.Method != "" && m.Method != "POST":
			g.errs.warn(refOf(in.Source), "route %s: match %d: gRPC calls are POST requests, method %s never matches; the match is not sent to proxyless gRPC clients", in.Name, i, m.Method)
		case m.Method == "POST":
			c := *m
			c.Method = ""
			out = append(out, &c)
		default:
			out = append(out, m)
		}
	}
	return out, len(out) > 0
}
