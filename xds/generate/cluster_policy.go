package generate

import (
	"fmt"

	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// applyPolicy sets load balancing, circuit breakers, outlier detection and
// HTTP protocol options of an outbound cluster; toApps says that it connects
// to applications without a sidecar (idle_defaults.go).
func applyPolicy(c *clusterv3.Cluster, p *ir.TrafficPolicy, proto ir.Protocol, toApps bool) error {
	var pool *ir.ConnectionPool
	if p != nil {
		if err := checkPolicy(p); err != nil {
			return err
		}
		pool = p.ConnectionPool
		if err := setLoadBalancer(c, p.LoadBalancer); err != nil {
			return err
		}
		setConnectTimeout(c, pool)
		setOutlierDetection(c, p.OutlierDetection)
	}
	options := protocolOptions
	if toApps {
		options = appProtocolOptions
	}
	opts, err := options(proto, pool)
	if err != nil {
		return err
	}
	c.TypedExtensionProtocolOptions = opts
	return nil
}

// checkPolicy rejects what the cluster's ValidateAll cannot see: a hash key
// Envoy would refuse on the routes, and negative durations.
func checkPolicy(p *ir.TrafficPolicy) error {
	if lb := p.LoadBalancer; lb != nil && lb.Algorithm == ir.LBRingHash {
		if hp := hashKey(lb); hp != nil {
			if err := hp.ValidateAll(); err != nil {
				return fmt.Errorf("hash key: %w", err)
			}
		}
		if lb.HashCookie != nil && lb.HashCookie.TTL != nil && *lb.HashCookie.TTL < 0 {
			return fmt.Errorf("hash cookie TTL %s is negative", lb.HashCookie.TTL.Std())
		}
	}
	if pool := p.ConnectionPool; pool != nil && pool.IdleTimeout != nil && *pool.IdleTimeout < 0 {
		return fmt.Errorf("idle timeout %s is negative", pool.IdleTimeout.Std())
	}
	return nil
}

// setLoadBalancer sets the LB policy. ORIGINAL_DST clusters keep CLUSTER_PROVIDED.
func setLoadBalancer(c *clusterv3.Cluster, lb *ir.LoadBalancer) error {
	if lb == nil || c.LbPolicy == clusterv3.Cluster_CLUSTER_PROVIDED {
		return nil
	}
	switch lb.Algorithm {
	case ir.LBRoundRobin, "":
		c.LbPolicy = clusterv3.Cluster_ROUND_ROBIN
	case ir.LBLeastRequest:
		c.LbPolicy = clusterv3.Cluster_LEAST_REQUEST
	case ir.LBRandom:
		c.LbPolicy = clusterv3.Cluster_RANDOM
	case ir.LBRingHash:
		c.LbPolicy = clusterv3.Cluster_RING_HASH
	default:
		return fmt.Errorf("unknown load-balancing algorithm %q", lb.Algorithm)
	}
	return nil
}

// setConnectTimeout sets the pool's connect timeout; its thresholds are
// set with the defaults (circuitBreakers).
func setConnectTimeout(c *clusterv3.Cluster, pool *ir.ConnectionPool) {
	if pool != nil && pool.ConnectTimeout != nil {
		c.ConnectTimeout = duration(*pool.ConnectTimeout)
	}
}

// setOutlierDetection ejects failing endpoints. A nil counter disables that
// check (Envoy would otherwise default consecutive 5xx to 5); success-rate
// ejection is off, as in Istio. MinHealthPercent becomes the panic threshold.
func setOutlierDetection(c *clusterv3.Cluster, od *ir.OutlierDetection) {
	if od == nil {
		return
	}
	out := &clusterv3.OutlierDetection{
		MaxEjectionPercent:                 wrapperspb.UInt32(od.MaxEjectionPercent),
		EnforcingConsecutive_5Xx:           wrapperspb.UInt32(0),
		EnforcingConsecutiveGatewayFailure: wrapperspb.UInt32(0),
		EnforcingSuccessRate:               wrapperspb.UInt32(0),
	}
	if od.Interval > 0 {
		out.Interval = duration(od.Interval)
	}
	if od.BaseEjectionTime > 0 {
		out.BaseEjectionTime = duration(od.BaseEjectionTime)
	}
	if n := od.Consecutive5xxErrors; n != nil {
		out.Consecutive_5Xx, out.EnforcingConsecutive_5Xx = wrapperspb.UInt32(*n), wrapperspb.UInt32(100)
	}
	if n := od.ConsecutiveGatewayErrors; n != nil {
		out.ConsecutiveGatewayFailure, out.EnforcingConsecutiveGatewayFailure = wrapperspb.UInt32(*n), wrapperspb.UInt32(100)
	}
	if fp := od.FailurePercentage; fp != nil {
		out.FailurePercentageThreshold, out.EnforcingFailurePercentage = wrapperspb.UInt32(fp.Threshold), wrapperspb.UInt32(100)
		out.FailurePercentageMinimumHosts = wrapperspb.UInt32(fp.MinimumHosts)
		out.FailurePercentageRequestVolume = wrapperspb.UInt32(fp.RequestVolume)
	}
	c.OutlierDetection = out
	c.CommonLbConfig = &clusterv3.Cluster_CommonLbConfig{
		HealthyPanicThreshold: &typev3.Percent{Value: float64(od.MinHealthPercent)},
	}
}

// protocolOptions returns the cluster's typed_extension_protocol_options:
// HTTP/2 upstream for HTTP2 and GRPC ports, and the pool's idle timeout and
// requests per connection for HTTP ports. Nil when Envoy's defaults apply.
func protocolOptions(proto ir.Protocol, pool *ir.ConnectionPool) (map[string]*anypb.Any, error) {
	common := commonHTTPOptions(pool)
	if !proto.IsHTTP() || (common == nil && proto == ir.ProtocolHTTP) {
		return nil, nil
	}
	if common == nil {
		return map[string]*anypb.Any{httpProtocolOptionsID: sharedHTTP2Options}, nil
	}
	a, err := pack(httpOptions(proto, common))
	if err != nil {
		return nil, err
	}
	return map[string]*anypb.Any{httpProtocolOptionsID: a}, nil
}

func httpOptions(proto ir.Protocol, common *corev3.HttpProtocolOptions) *upstreamhttpv3.HttpProtocolOptions {
	return &upstreamhttpv3.HttpProtocolOptions{
		CommonHttpProtocolOptions: common,
		UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: explicitHTTP(proto),
		},
	}
}

func commonHTTPOptions(pool *ir.ConnectionPool) *corev3.HttpProtocolOptions {
	if pool == nil || (pool.IdleTimeout == nil && pool.MaxRequestsPerConnection == 0) {
		return nil
	}
	return &corev3.HttpProtocolOptions{
		IdleTimeout:              durationOrNil(pool.IdleTimeout),
		MaxRequestsPerConnection: u32OrNil(pool.MaxRequestsPerConnection),
	}
}

func explicitHTTP(proto ir.Protocol) *upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig {
	if proto == ir.ProtocolHTTP {
		return &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{
				HttpProtocolOptions: &corev3.Http1ProtocolOptions{},
			},
		}
	}
	return &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
		ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
			Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
		},
	}
}

// retryBudgets collects the retry budget each destination cluster gets from
// the routes that send to it; the first route (services by FQDN, rules in
// order) wins. An invalid budget is reported on its route and ignored.
func (b *builder) retryBudgets() map[string]*ir.RetryBudget {
	out := map[string]*ir.RetryBudget{}
	for _, s := range b.services {
		for _, r := range s.Routes {
			if r == nil || r.Retries == nil || r.Retries.Budget == nil {
				continue
			}
			if r.Retries.Budget.Percent > 100 {
				b.errs.add(refOf(r.Source), "route %s: retry budget of %d%% is over 100%%; budget ignored", r.Name, r.Retries.Budget.Percent)
				continue
			}
			b.addBudgets(out, s, r)
		}
	}
	return out
}

func (b *builder) addBudgets(out map[string]*ir.RetryBudget, s *service, r *ir.HTTPRoute) {
	for _, p := range s.validPorts {
		if !p.Protocol.IsHTTP() {
			continue
		}
		for _, d := range r.Destinations {
			if d == nil {
				continue
			}
			if name := destinationCluster(d, p.Port); out[name] == nil {
				out[name] = r.Retries.Budget
			}
		}
	}
}
