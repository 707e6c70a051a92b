package generate

import (
	"fmt"
	"math"

	"google.golang.org/protobuf/types/known/wrapperspb"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// Circuit-breaker defaults. Envoy's own (1024 connections, 1024 pending,
// 1024 requests, 3 retries per cluster) make a busy sidecar answer 503 with
// the overflow flag at about a thousand concurrent requests to one service,
// a limit nobody configured. Capstan sets every threshold a DestinationPolicy
// leaves unset to unlimitedThreshold instead (as Istio does), so only a
// configured limit applies.
const unlimitedThreshold = math.MaxUint32

// Default retry budget of HTTP clusters whose DestinationPolicy does not set
// maxRetries: retries in flight may be 20% of the requests in flight, and at
// least defaultMinRetryConcurrency (Envoy's own budget defaults are 20% and 3;
// 10 lets a small client ride out a pod that refuses a burst of connections).
// It bounds the default retries of routes (route_feature_retries.go) now
// that max_retries no longer does.
const (
	defaultRetryBudgetPercent  = 20
	defaultMinRetryConcurrency = 10
)

var (
	// sharedUnlimitedBreakers are the circuit breakers of clusters without
	// pool limits or a retry budget: TCP outbound clusters, inbound and
	// passthrough clusters.
	sharedUnlimitedBreakers = mustValid(&clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{unlimitedThresholds()}})
	// sharedDefaultHTTPBreakers add the default retry budget.
	sharedDefaultHTTPBreakers = mustValid(&clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{
		withBudget(unlimitedThresholds(), defaultRetryBudget()),
	}})
)

func unlimitedThresholds() *clusterv3.CircuitBreakers_Thresholds {
	return &clusterv3.CircuitBreakers_Thresholds{
		MaxConnections:     wrapperspb.UInt32(unlimitedThreshold),
		MaxPendingRequests: wrapperspb.UInt32(unlimitedThreshold),
		MaxRequests:        wrapperspb.UInt32(unlimitedThreshold),
		MaxRetries:         wrapperspb.UInt32(unlimitedThreshold),
	}
}

func defaultRetryBudget() *clusterv3.CircuitBreakers_Thresholds_RetryBudget {
	return &clusterv3.CircuitBreakers_Thresholds_RetryBudget{
		BudgetPercent:       &typev3.Percent{Value: defaultRetryBudgetPercent},
		MinRetryConcurrency: wrapperspb.UInt32(defaultMinRetryConcurrency),
	}
}

func withBudget(t *clusterv3.CircuitBreakers_Thresholds, b *clusterv3.CircuitBreakers_Thresholds_RetryBudget) *clusterv3.CircuitBreakers_Thresholds {
	t.RetryBudget = b
	return t
}

// circuitBreakers are an outbound cluster's thresholds: the pool's where it
// sets them, unlimited elsewhere; the retry budget of the routes to the
// cluster, else the default budget on HTTP clusters unless the pool caps
// retries with maxRetries (a budget would override it). Clusters without
// pool limits or route budget share a constant.
func circuitBreakers(pool *ir.ConnectionPool, budget *ir.RetryBudget, http bool) *clusterv3.CircuitBreakers {
	if !hasThresholds(pool) && budget == nil {
		if http {
			return sharedDefaultHTTPBreakers
		}
		return sharedUnlimitedBreakers
	}
	if pool == nil {
		pool = &ir.ConnectionPool{}
	}
	t := &clusterv3.CircuitBreakers_Thresholds{
		MaxConnections:     u32OrUnlimited(pool.MaxConnections),
		MaxPendingRequests: u32OrUnlimited(pool.MaxPendingRequests),
		MaxRequests:        u32OrUnlimited(pool.MaxRequests),
		MaxRetries:         u32OrUnlimited(pool.MaxRetries),
	}
	switch {
	case budget != nil:
		t.RetryBudget = &clusterv3.CircuitBreakers_Thresholds_RetryBudget{
			BudgetPercent:       &typev3.Percent{Value: float64(budget.Percent)},
			MinRetryConcurrency: wrapperspb.UInt32(budget.MinRetryConcurrency),
		}
	case http && pool.MaxRetries == 0:
		t.RetryBudget = defaultRetryBudget()
	}
	return &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{t}}
}

func hasThresholds(pool *ir.ConnectionPool) bool {
	return pool != nil && (pool.MaxConnections != 0 || pool.MaxPendingRequests != 0 || pool.MaxRequests != 0 || pool.MaxRetries != 0)
}

func u32OrUnlimited(v uint32) *wrapperspb.UInt32Value {
	if v == 0 {
		return wrapperspb.UInt32(unlimitedThreshold)
	}
	return wrapperspb.UInt32(v)
}

func policyPool(p *ir.TrafficPolicy) *ir.ConnectionPool {
	if p == nil {
		return nil
	}
	return p.ConnectionPool
}

// mustValid returns a constant message after checking it, once, at start-up.
func mustValid[M interface{ ValidateAll() error }](m M) M {
	if err := m.ValidateAll(); err != nil {
		panic(fmt.Sprintf("generate: invalid constant: %v", err))
	}
	return m
}
