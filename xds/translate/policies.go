package translate

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/api/validation"
	"github.com/capstanmesh/capstan/xds/ir"
)

// translatePolicies applies each DestinationPolicy to its host, oldest first;
// a host already configured by an older policy makes the newer one Conflicted.
func (t *translator) translatePolicies() {
	for _, dp := range byAge(t.in.DestinationPolicies) {
		st := t.statuses.get(KindDestinationPolicy, dp, true)
		svc, fqdn := t.lookupHost(dp.Spec.Host, dp.Namespace)
		switch {
		case svc == nil:
			st.unresolvedf(meshv1alpha1.ReasonHostNotFound, "spec.host: host %q (%s) names no Service", dp.Spec.Host, fqdn)
		case svc.PolicySource != nil:
			st.conflictf("spec.host: host %s is already configured by %s", fqdn, t.statuses.winner(*svc.PolicySource, st))
		default:
			applyPolicy(svc, dp, st)
		}
	}
}

// applyPolicy configures svc with dp. A part with a problem
// (api/validation) is left out and the problem reported as Invalid: a
// subset, or a traffic policy's load balancer or outlier detection.
func applyPolicy(svc *ir.Service, dp *meshv1alpha1.DestinationPolicy, st *objectStatus) {
	ref := st.ref
	svc.PolicySource = &ref
	problems := validation.DestinationPolicy(dp)
	reportInvalid(st, problems)
	spec := field.NewPath("spec")
	base := validTrafficPolicy(dp.Spec.TrafficPolicy, problems, spec.Child("trafficPolicy"))
	svc.Policy = convertTrafficPolicy(base)
	for i := range dp.Spec.Subsets {
		ss := &dp.Spec.Subsets[i]
		path := spec.Child("subsets").Index(i)
		if subsetLeftOut(problems, path) {
			continue
		}
		svc.Subsets = append(svc.Subsets, &ir.Subset{
			Name:   ss.Name,
			Labels: maps.Clone(ss.Labels),
			Policy: convertTrafficPolicy(mergeTrafficPolicy(base, validTrafficPolicy(ss.TrafficPolicy, problems, path.Child("trafficPolicy")))),
		})
	}
	slices.SortFunc(svc.Subsets, func(a, b *ir.Subset) int { return cmp.Compare(a.Name, b.Name) })
}

// subsetLeftOut says whether the subset at path has a problem outside its
// traffic policy (its name or labels), which leaves the whole subset out.
func subsetLeftOut(problems field.ErrorList, path *field.Path) bool {
	return len(problemsUnder(problems, path)) > len(problemsUnder(problems, path.Child("trafficPolicy")))
}

// validTrafficPolicy is tp without the load balancer or outlier detection
// that has a problem; tp itself when it has none.
func validTrafficPolicy(tp *meshv1alpha1.TrafficPolicy, problems field.ErrorList, path *field.Path) *meshv1alpha1.TrafficPolicy {
	if tp == nil || len(problemsUnder(problems, path)) == 0 {
		return tp
	}
	out := *tp
	if len(problemsUnder(problems, path.Child("loadBalancer"))) > 0 {
		out.LoadBalancer = nil
	}
	if len(problemsUnder(problems, path.Child("outlierDetection"))) > 0 {
		out.OutlierDetection = nil
	}
	return &out
}

// convertTrafficPolicy converts p, applying the API's defaults; nil when p sets nothing.
func convertTrafficPolicy(p *meshv1alpha1.TrafficPolicy) *ir.TrafficPolicy {
	if p == nil {
		return nil
	}
	out := &ir.TrafficPolicy{
		LoadBalancer:     convertLoadBalancer(p.LoadBalancer),
		ConnectionPool:   convertConnectionPool(p.ConnectionPool),
		OutlierDetection: convertOutlierDetection(p.OutlierDetection),
	}
	if *out == (ir.TrafficPolicy{}) {
		return nil
	}
	return out
}

var simpleLBs = map[meshv1alpha1.SimpleLB]ir.LBAlgorithm{
	meshv1alpha1.LBRoundRobin:   ir.LBRoundRobin,
	meshv1alpha1.LBLeastRequest: ir.LBLeastRequest,
	meshv1alpha1.LBRandom:       ir.LBRandom,
}

func convertLoadBalancer(lb *meshv1alpha1.LoadBalancer) *ir.LoadBalancer {
	switch {
	case lb == nil:
		return nil
	case lb.ConsistentHash != nil:
		return convertConsistentHash(lb.ConsistentHash)
	}
	if alg, ok := simpleLBs[lb.Simple]; ok {
		return &ir.LoadBalancer{Algorithm: alg}
	}
	return nil
}

func convertConsistentHash(ch *meshv1alpha1.ConsistentHash) *ir.LoadBalancer {
	out := &ir.LoadBalancer{
		Algorithm:    ir.LBRingHash,
		HashHeader:   ch.HTTPHeaderName,
		HashSourceIP: ch.UseSourceIP,
	}
	if c := ch.HTTPCookie; c != nil {
		out.HashCookie = &ir.HashCookie{Name: c.Name, Path: c.Path, TTL: irDuration(c.TTL)}
	}
	return out
}

func convertConnectionPool(p *meshv1alpha1.ConnectionPool) *ir.ConnectionPool {
	if p == nil || (p.TCP == nil && p.HTTP == nil) {
		return nil
	}
	out := &ir.ConnectionPool{}
	if tcp := p.TCP; tcp != nil {
		out.MaxConnections = u32(tcp.MaxConnections)
		out.ConnectTimeout = irDuration(tcp.ConnectTimeout)
	}
	if h := p.HTTP; h != nil {
		out.MaxPendingRequests = u32(h.HTTP1MaxPendingRequests)
		out.MaxRequests = u32(h.HTTP2MaxRequests)
		out.MaxRequestsPerConnection = u32(h.MaxRequestsPerConnection)
		out.MaxRetries = u32(h.MaxRetries)
		out.IdleTimeout = irDuration(h.IdleTimeout)
	}
	return out
}

// Outlier detection defaults, as in the API: they keep at least half the pool.
const (
	defaultConsecutive5xx     = 5
	defaultOutlierInterval    = 10 * time.Second
	defaultBaseEjectionTime   = 30 * time.Second
	defaultMaxEjectionPercent = 50
	defaultMinHealthPercent   = 50
)

func convertOutlierDetection(od *meshv1alpha1.OutlierDetection) *ir.OutlierDetection {
	if od == nil {
		return nil
	}
	return &ir.OutlierDetection{
		Consecutive5xxErrors:     counter(od.Consecutive5xxErrors, defaultConsecutive5xx),
		ConsecutiveGatewayErrors: counter(od.ConsecutiveGatewayErrors, 0),
		Interval:                 durationOr(od.Interval, defaultOutlierInterval),
		BaseEjectionTime:         durationOr(od.BaseEjectionTime, defaultBaseEjectionTime),
		MaxEjectionPercent:       int32Or(od.MaxEjectionPercent, defaultMaxEjectionPercent),
		MinHealthPercent:         int32Or(od.MinHealthPercent, defaultMinHealthPercent),
		FailurePercentage:        convertFailurePercentage(od.FailurePercentage),
	}
}

// Failure-percentage ejection defaults, as in the API (and Envoy).
const (
	defaultFailureThreshold     = 85
	defaultFailureMinimumHosts  = 5
	defaultFailureRequestVolume = 50
)

func convertFailurePercentage(fp *meshv1alpha1.FailurePercentageEjection) *ir.FailurePercentage {
	if fp == nil {
		return nil
	}
	return &ir.FailurePercentage{
		Threshold:     int32Or(fp.Threshold, defaultFailureThreshold),
		MinimumHosts:  int32Or(fp.MinimumHosts, defaultFailureMinimumHosts),
		RequestVolume: int32Or(fp.RequestVolume, defaultFailureRequestVolume),
	}
}

// counter is an ejection threshold: def when unset, and nil (check disabled) when 0.
func counter(v *int32, def int32) *uint32 {
	n := def
	if v != nil {
		n = *v
	}
	if n <= 0 {
		return nil
	}
	u := uint32(n)
	return &u
}

func int32Or(v *int32, def int32) uint32 {
	if v == nil {
		return u32(def)
	}
	return u32(*v)
}
