package generate

import (
	"slices"
	"strings"

	"google.golang.org/protobuf/types/known/wrapperspb"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// warnRule reports each part of a rule that gRPC clients do not get.
func (g *grpcBuilder) warnRule(in *ir.HTTPRoute) {
	src := refOf(in.Source)
	parts := []struct {
		name string
		set  bool
	}{
		{"mirror", in.Mirror != nil},
		{"rewrite", in.Rewrite != nil},
		{"requestHeaders", in.RequestHeaders != nil},
		{"responseHeaders", in.ResponseHeaders != nil},
		{"retries.perTryTimeout", in.Retries != nil && in.Retries.PerTryTimeout != nil},
		{"retries.budget", in.Retries != nil && in.Retries.Budget != nil},
	}
	for _, p := range parts {
		if p.set {
			g.errs.warn(src, "route %s: %s is %s", in.Name, p.name, notSent)
		}
	}
	if in.Redirect != nil {
		g.errs.warn(src, "route %s: redirect is not supported by proxyless gRPC clients; the rule fails their calls", in.Name)
	}
	if in.Retries != nil && in.Retries.Attempts > maxGRPCRetries {
		g.errs.warn(src, "route %s: proxyless gRPC clients retry at most %d times, not %d", in.Name, maxGRPCRetries, in.Retries.Attempts)
	}
}

// maxGRPCRetries is the most retries a gRPC client makes (5 attempts in all).
const maxGRPCRetries = 4

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

// grpcRetryOn maps each retry condition to the gRPC status codes that mean it
// for a gRPC call: connection failures, resets and refused streams surface as
// UNAVAILABLE; a 5xx answer as UNAVAILABLE or INTERNAL; gateway errors (502,
// 503, 504) as UNAVAILABLE. retriable-4xx has no gRPC meaning.
var grpcRetryOn = map[string][]string{
	"cancelled":          {"cancelled"},
	"deadline-exceeded":  {"deadline-exceeded"},
	"internal":           {"internal"},
	"resource-exhausted": {"resource-exhausted"},
	"unavailable":        {"unavailable"},
	"5xx":                {"internal", "unavailable"},
	"gateway-error":      {"unavailable"},
	"reset":              {"unavailable"},
	"connect-failure":    {"unavailable"},
	"refused-stream":     {"unavailable"},
}

// retryPolicy is the rule's retries in gRPC's terms: the conditions as
// gRPC status codes, and the attempts. Per-try timeouts and budgets are not
// sent (warnRule). nil when no condition means anything to gRPC.
func (g *grpcBuilder) retryPolicy(in *ir.HTTPRoute) *routev3.RetryPolicy {
	r := in.Retries
	if r == nil || r.Attempts == 0 {
		return nil
	}
	var codes []string
	for _, cond := range r.RetryOn {
		mapped, ok := grpcRetryOn[cond]
		if !ok {
			g.errs.warn(refOf(in.Source), "route %s: retryOn %s is %s", in.Name, cond, notSent)
		}
		codes = append(codes, mapped...)
	}
	slices.Sort(codes)
	codes = slices.Compact(codes)
	if len(codes) == 0 {
		g.errs.warn(refOf(in.Source), "route %s: no retryOn condition applies to gRPC calls; proxyless gRPC clients do not retry", in.Name)
		return nil
	}
	return &routev3.RetryPolicy{RetryOn: strings.Join(codes, ","), NumRetries: wrapperspb.UInt32(r.Attempts)}
}
