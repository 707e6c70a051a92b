package generate

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/types/known/wrapperspb"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// destinationCluster is the cluster of a destination reached through a port;
// a destination without a port uses the port the request came in on.
func destinationCluster(d *ir.Destination, port uint32) string {
	return clusterName(d.Service, destinationPort(d, port), d.Subset)
}

func destinationPort(d *ir.Destination, port uint32) uint32 {
	if d.Port != 0 {
		return d.Port
	}
	return port
}

// destination is the generated cluster of destinationCluster(d, port), or nil.
func (b *builder) destination(d *ir.Destination, port uint32) *target {
	return b.target(d.Service, destinationPort(d, port), d.Subset)
}

// routeAction forwards a rule's requests: destinations, timeout, retries,
// rewrites, mirroring and the hash policy of ring-hash destinations.
func (b *builder) routeAction(port uint32, in *ir.HTTPRoute) (*routev3.RouteAction, error) {
	a := &routev3.RouteAction{Timeout: noTimeout(), RetryPolicy: retryPolicy(in.Retries)}
	targets, err := b.setDestinations(a, port, in.Destinations)
	if err != nil {
		return nil, err
	}
	if in.Timeout != nil {
		a.Timeout = duration(*in.Timeout)
	}
	if err := setRewrite(a, in.Rewrite); err != nil {
		return nil, err
	}
	a.HashPolicy = hashPolicy(targets)
	a.RequestMirrorPolicies = b.mirrorPolicies(port, in)
	return a, nil
}

// setDestinations sends to one cluster, or splits by weight between several.
func (b *builder) setDestinations(a *routev3.RouteAction, port uint32, ds []*ir.Destination) ([]*target, error) {
	return splitDestinations(a, port, ds, b.destination, func(t *target) string { return t.name })
}

// splitDestinations resolves each destination with find (nil when its
// cluster does not exist) and sends a to the one cluster, or splits it by
// weight between several. Both generators route this way.
func splitDestinations[T comparable](a *routev3.RouteAction, port uint32, ds []*ir.Destination,
	find func(*ir.Destination, uint32) T, name func(T) string) ([]T, error) {
	var none T
	targets := make([]T, 0, len(ds))
	weights := make([]*routev3.WeightedCluster_ClusterWeight, 0, len(ds))
	for _, d := range ds {
		if d == nil {
			return nil, errors.New("nil destination")
		}
		t := find(d, port)
		if t == none {
			return nil, fmt.Errorf("destination cluster %s not found", destinationCluster(d, port))
		}
		targets = append(targets, t)
		weights = append(weights, &routev3.WeightedCluster_ClusterWeight{Name: name(t), Weight: wrapperspb.UInt32(d.Weight)})
	}
	if len(weights) == 1 {
		a.ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: weights[0].Name}
		return targets, nil
	}
	a.ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{Clusters: weights}}
	return targets, nil
}

func retryPolicy(r *ir.Retries) *routev3.RetryPolicy {
	if r == nil {
		return nil
	}
	return &routev3.RetryPolicy{
		RetryOn:       strings.Join(r.RetryOn, ","),
		NumRetries:    wrapperspb.UInt32(r.Attempts),
		PerTryTimeout: durationOrNil(r.PerTryTimeout),
	}
}

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

// mirrorPolicies copies a share of requests to another cluster. A mirror to an
// unknown cluster is reported and dropped; the rule itself still works.
func (b *builder) mirrorPolicies(port uint32, in *ir.HTTPRoute) []*routev3.RouteAction_RequestMirrorPolicy {
	if in.Mirror == nil {
		return nil
	}
	t := b.destination(&in.Mirror.Destination, port)
	if t == nil {
		b.errs.add(refOf(in.Source), "route %s: mirror cluster %s not found; mirror dropped", in.Name, destinationCluster(&in.Mirror.Destination, port))
		return nil
	}
	return []*routev3.RouteAction_RequestMirrorPolicy{{
		Cluster:         t.name,
		RuntimeFraction: &corev3.RuntimeFractionalPercent{DefaultValue: percent(in.Mirror.Percent)},
	}}
}

// hashPolicy is the consistent-hash key of the first ring-hash destination, if any.
func hashPolicy(targets []*target) []*routev3.RouteAction_HashPolicy {
	for _, t := range targets {
		p := t.policy
		if p == nil || p.LoadBalancer == nil || p.LoadBalancer.Algorithm != ir.LBRingHash || t.service.Headless {
			continue
		}
		if hp := hashKey(p.LoadBalancer); hp != nil {
			return []*routev3.RouteAction_HashPolicy{hp}
		}
	}
	return nil
}

func hashKey(lb *ir.LoadBalancer) *routev3.RouteAction_HashPolicy {
	switch {
	case lb.HashHeader != "":
		return &routev3.RouteAction_HashPolicy{PolicySpecifier: &routev3.RouteAction_HashPolicy_Header_{
			Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: lb.HashHeader},
		}}
	case lb.HashCookie != nil:
		return &routev3.RouteAction_HashPolicy{PolicySpecifier: &routev3.RouteAction_HashPolicy_Cookie_{
			Cookie: &routev3.RouteAction_HashPolicy_Cookie{
				Name: lb.HashCookie.Name, Path: lb.HashCookie.Path, Ttl: durationOrNil(lb.HashCookie.TTL),
			},
		}}
	case lb.HashSourceIP:
		return &routev3.RouteAction_HashPolicy{PolicySpecifier: &routev3.RouteAction_HashPolicy_ConnectionProperties_{
			ConnectionProperties: &routev3.RouteAction_HashPolicy_ConnectionProperties{SourceIp: true},
		}}
	}
	return nil
}

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

// setHeaderEdits applies header edits: set overwrites, add appends.
func setHeaderEdits(rt *routev3.Route, req, resp *ir.HeaderOps) {
	if req != nil {
		rt.RequestHeadersToAdd = headerValues(req)
		rt.RequestHeadersToRemove = cloneStrings(req.Remove)
	}
	if resp != nil {
		rt.ResponseHeadersToAdd = headerValues(resp)
		rt.ResponseHeadersToRemove = cloneStrings(resp.Remove)
	}
}

func headerValues(ops *ir.HeaderOps) []*corev3.HeaderValueOption {
	out := make([]*corev3.HeaderValueOption, 0, len(ops.Set)+len(ops.Add))
	out = appendHeaders(out, ops.Set, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD)
	out = appendHeaders(out, ops.Add, corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD)
	if len(out) == 0 {
		return nil
	}
	return out
}

func appendHeaders(out []*corev3.HeaderValueOption, hs []*ir.Header, action corev3.HeaderValueOption_HeaderAppendAction) []*corev3.HeaderValueOption {
	for _, h := range hs {
		if h != nil {
			out = append(out, &corev3.HeaderValueOption{
				Header:       &corev3.HeaderValue{Key: h.Name, Value: h.Value},
				AppendAction: action,
			})
		}
	}
	return out
}
