package generate

import (
	"testing"

	"github.com/capstanmesh/capstan/xds/ir"
)

// TestCircuitBreakerDefaults: thresholds a pool leaves unset are
// unlimited; HTTP clusters get the default retry budget unless the pool
// caps retries (a budget would override max_retries) or a route asks for
// its own budget; TCP clusters get no budget.
func TestCircuitBreakerDefaults(t *testing.T) {
	routeBudget := &ir.RetryBudget{Percent: 50, MinRetryConcurrency: 2}
	cases := []struct {
		name                 string
		pool                 *ir.ConnectionPool
		budget               *ir.RetryBudget
		http                 bool
		maxRequests, retries uint32
		budgetPercent        float64 // 0: no budget
	}{
		{name: "http, no pool", http: true, maxRequests: unlimitedThreshold, retries: unlimitedThreshold, budgetPercent: defaultRetryBudgetPercent},
		{name: "tcp, no pool", maxRequests: unlimitedThreshold, retries: unlimitedThreshold},
		{name: "pool max requests", pool: &ir.ConnectionPool{MaxRequests: 7}, http: true, maxRequests: 7, retries: unlimitedThreshold, budgetPercent: defaultRetryBudgetPercent},
		{name: "pool max retries", pool: &ir.ConnectionPool{MaxRetries: 4}, http: true, maxRequests: unlimitedThreshold, retries: 4},
		{name: "route budget", budget: routeBudget, http: true, maxRequests: unlimitedThreshold, retries: unlimitedThreshold, budgetPercent: 50},
		{name: "pool without thresholds", pool: &ir.ConnectionPool{ConnectTimeout: ir.DurationPtr(1)}, http: true, maxRequests: unlimitedThreshold, retries: unlimitedThreshold, budgetPercent: defaultRetryBudgetPercent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cb := circuitBreakers(c.pool, c.budget, c.http)
			if err := cb.ValidateAll(); err != nil {
				t.Fatal(err)
			}
			th := cb.GetThresholds()[0]
			if th.GetMaxRequests().GetValue() != c.maxRequests || th.GetMaxRetries().GetValue() != c.retries ||
				th.GetMaxConnections().GetValue() == 0 || th.GetMaxPendingRequests().GetValue() == 0 {
				t.Errorf("thresholds %v, want max_requests %d, max_retries %d, the rest set", th, c.maxRequests, c.retries)
			}
			if got := th.GetRetryBudget().GetBudgetPercent().GetValue(); got != c.budgetPercent {
				t.Errorf("retry budget %v%%, want %v%%", got, c.budgetPercent)
			}
		})
	}
}
