package generate

import (
	"reflect"

	"google.golang.org/protobuf/types/known/wrapperspb"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// clusters adds an EDS cluster and its load assignment per service port and
// subset, with the part of the traffic policy gRPC honours.
func (g *grpcBuilder) clusters() {
	for _, s := range g.services {
		g.warnPolicy(s.Service, "", s.Policy)
		for _, ss := range s.Subsets {
			if ss != nil && !reflect.DeepEqual(ss.Policy, s.Policy) {
				g.warnPolicy(s.Service, "subset "+ss.Name+": ", ss.Policy)
			}
		}
		for _, p := range s.ports {
			g.addCluster(s, p, nil)
			for _, ss := range s.Subsets {
				if ss != nil {
					g.addCluster(s, p, ss)
				}
			}
		}
	}
}

func (g *grpcBuilder) addCluster(s *grpcService, p *ir.ServicePort, subset *ir.Subset) {
	t := &grpcTarget{service: s, port: p, subset: subset}
	sub, policy := "", s.Policy
	if subset != nil {
		sub, policy = subset.Name, subset.Policy
	}
	t.name = clusterName(s.FQDN, p.Port, sub)
	if g.targets[t.name] != nil {
		return // a repeated subset name
	}
	c, err := grpcCluster(t.name, policy)
	if err != nil {
		g.errs.add(policySource(s.Service), "cluster %s: %v; sent to proxyless gRPC clients without the policy", t.name, err)
		c, _ = grpcCluster(t.name, nil)
	} else {
		t.policy = policy
	}
	g.targets[t.name] = t
	g.out.Clusters = append(g.out.Clusters, c)
	g.out.Endpoints = append(g.out.Endpoints, g.loadAssignment(t))
}

// grpcCluster is an EDS cluster over ADS with the policy gRPC honours: load
// balancing, max_requests and failure-percentage outlier detection.
func grpcCluster(name string, p *ir.TrafficPolicy) (*clusterv3.Cluster, error) {
	c := &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: ads()},
	}
	if p == nil {
		return c, nil
	}
	if err := checkPolicy(p); err != nil {
		return nil, err
	}
	setGRPCLoadBalancer(c, p.LoadBalancer)
	if pool := p.ConnectionPool; pool != nil && pool.MaxRequests > 0 {
		c.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{
			MaxRequests: wrapperspb.UInt32(pool.MaxRequests),
		}}}
	}
	c.OutlierDetection = grpcOutlierDetection(p.OutlierDetection)
	if err := c.ValidateAll(); err != nil {
		return nil, err
	}
	return c, nil
}

// setGRPCLoadBalancer sets round robin (the default), least request or ring
// hash with XX_HASH. gRPC has no RANDOM: it keeps round robin (warnPolicy).
func setGRPCLoadBalancer(c *clusterv3.Cluster, lb *ir.LoadBalancer) {
	if lb == nil {
		return
	}
	switch lb.Algorithm {
	case ir.LBLeastRequest:
		c.LbPolicy = clusterv3.Cluster_LEAST_REQUEST
	case ir.LBRingHash:
		c.LbPolicy = clusterv3.Cluster_RING_HASH
		c.LbConfig = &clusterv3.Cluster_RingHashLbConfig_{RingHashLbConfig: &clusterv3.Cluster_RingHashLbConfig{
			HashFunction: clusterv3.Cluster_RingHashLbConfig_XX_HASH,
		}}
	}
}

// grpcOutlierDetection is failure-percentage ejection, the one algorithm of
// the model that gRPC implements; nil without it. Success-rate ejection is
// switched off explicitly (gRPC would enable it when the field is unset).
func grpcOutlierDetection(od *ir.OutlierDetection) *clusterv3.OutlierDetection {
	if od == nil || od.FailurePercentage == nil {
		return nil
	}
	fp := od.FailurePercentage
	out := &clusterv3.OutlierDetection{
		MaxEjectionPercent:             wrapperspb.UInt32(od.MaxEjectionPercent),
		EnforcingSuccessRate:           wrapperspb.UInt32(0),
		FailurePercentageThreshold:     wrapperspb.UInt32(fp.Threshold),
		EnforcingFailurePercentage:     wrapperspb.UInt32(100),
		FailurePercentageMinimumHosts:  wrapperspb.UInt32(fp.MinimumHosts),
		FailurePercentageRequestVolume: wrapperspb.UInt32(fp.RequestVolume),
	}
	if od.Interval > 0 {
		out.Interval = duration(od.Interval)
	}
	if od.BaseEjectionTime > 0 {
		out.BaseEjectionTime = duration(od.BaseEjectionTime)
	}
	return out
}

// warnPolicy reports each part of a traffic policy that gRPC clients do not
// get. It runs once per policy (service and subsets), not per cluster.
// where prefixes the messages of a subset's policy.
func (g *grpcBuilder) warnPolicy(s *ir.Service, where string, p *ir.TrafficPolicy) {
	if p == nil {
		return
	}
	src := policySource(s)
	for _, field := range unsupportedPolicyFields(p) {
		g.errs.warn(src, "%s%s is %s", where, field, notSent)
	}
	if od := p.OutlierDetection; od != nil && od.FailurePercentage != nil && od.MaxEjectionPercent >= 100 {
		g.errs.warn(src, "%soutlierDetection: proxyless gRPC clients have no panic threshold (minHealthPercent), "+
			"so maxEjectionPercent %d lets them eject every endpoint", where, od.MaxEjectionPercent)
	}
}

// unsupportedPolicyFields names, as the API does, the set fields of p that
// gRPC clients cannot honour.
func unsupportedPolicyFields(p *ir.TrafficPolicy) []string {
	var out []string
	if lb := p.LoadBalancer; lb != nil {
		if lb.Algorithm == ir.LBRandom {
			out = append(out, "loadBalancer.simple RANDOM (they use round robin)")
		}
		if lb.Algorithm == ir.LBRingHash && (lb.HashCookie != nil || lb.HashSourceIP) {
			out = append(out, "loadBalancer.consistentHash by cookie or source IP (each call gets a random hash)")
		}
	}
	if pool := p.ConnectionPool; pool != nil {
		out = append(out, unsupportedPoolFields(pool)...)
	}
	if od := p.OutlierDetection; od != nil {
		if od.Consecutive5xxErrors != nil {
			out = append(out, "outlierDetection.consecutive5xxErrors")
		}
		if od.ConsecutiveGatewayErrors != nil {
			out = append(out, "outlierDetection.consecutiveGatewayErrors")
		}
	}
	return out
}

func unsupportedPoolFields(pool *ir.ConnectionPool) []string {
	fields := []struct {
		name string
		set  bool
	}{
		{"connectionPool.tcp.maxConnections", pool.MaxConnections > 0},
		{"connectionPool.tcp.connectTimeout", pool.ConnectTimeout != nil},
		{"connectionPool.http.http1MaxPendingRequests", pool.MaxPendingRequests > 0},
		{"connectionPool.http.maxRequestsPerConnection", pool.MaxRequestsPerConnection > 0},
		{"connectionPool.http.maxRetries", pool.MaxRetries > 0},
		{"connectionPool.http.idleTimeout", pool.IdleTimeout != nil},
	}
	var out []string
	for _, f := range fields {
		if f.set {
			out = append(out, f.name)
		}
	}
	return out
}
