package generate

import (
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// hashFeature sets the consistent-hash key of a rule whose destination uses
// ring-hash load balancing. It reads no rule field: the key comes from the
// destination's policy, so it runs after the destinations feature.
type hashFeature struct{}

func (hashFeature) name() string { return "hash policy" }

func (hashFeature) fields() []routeField {
	return []routeField{{api: "`loadBalancer.consistentHash` of a destination (DestinationPolicy)", grpc: grpcAdapted,
		note: "a header `hash_policy` only; a hash by cookie or source IP is not sent (warning on the DestinationPolicy)"}}
}

func (hashFeature) check(*ir.HTTPRoute) error { return nil }

func (hashFeature) sidecar(r *sidecarRule) error {
	if r.action != nil {
		r.action.HashPolicy = hashPolicy(r.targets)
	}
	return nil
}

func (hashFeature) grpc(r *grpcRule) error {
	if r.action != nil {
		r.action.HashPolicy = grpcHashPolicy(r.targets)
	}
	return nil
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

// grpcHashPolicy is the header hash key of the first ring-hash destination:
// the one key gRPC hashes (warnPolicy reports the others).
func grpcHashPolicy(targets []*grpcTarget) []*routev3.RouteAction_HashPolicy {
	for _, t := range targets {
		p := t.policy
		if p == nil || p.LoadBalancer == nil || p.LoadBalancer.Algorithm != ir.LBRingHash || p.LoadBalancer.HashHeader == "" {
			continue
		}
		return []*routev3.RouteAction_HashPolicy{hashKey(p.LoadBalancer)}
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
