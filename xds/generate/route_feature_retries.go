package generate

import (
	"slices"
	"strings"

	"google.golang.org/protobuf/types/known/wrapperspb"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	previoushostsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// retriesFeature retries failed requests. The retry budget is not part of
// the route: sidecars get it on the destination clusters' circuit breakers
// (retryBudgets in cluster_policy.go).
type retriesFeature struct{}

func (retriesFeature) name() string { return "retries" }

func (retriesFeature) fields() []routeField {
	return []routeField{
		{path: "retries.attempts", grpc: grpcAdapted,
			note: "`num_retries`; gRPC makes at most 5 attempts, so above 4 a warning says it is capped"},
		{path: "retries.retryOn", grpc: grpcAdapted,
			note: "as gRPC status codes: `cancelled`, `deadline-exceeded`, `internal`, `resource-exhausted`, `unavailable` as is; " +
				"`5xx` → `internal,unavailable`; `gateway-error`, `reset`, `connect-failure`, `refused-stream` → `unavailable` " +
				"(what a gRPC client sees for them); `retriable-4xx` dropped with a warning. No condition left → no retries, with a warning"},
		{path: "retries.perTryTimeout", grpc: grpcNotSent, note: "gRPC has no per-try timeout"},
		{path: "retries.budget", grpc: grpcNotSent,
			note: "sidecars get it on the destination clusters' circuit breakers; gRPC has no retry budget"},
	}
}

func (retriesFeature) check(in *ir.HTTPRoute) error {
	if in.Retries == nil {
		return nil
	}
	return checkNotNegative("per-try timeout", in.Retries.PerTryTimeout)
}

// sidecar sets the rule's retries, or the default retries when the rule
// has none (retries with attempts 0 turn them off).
func (retriesFeature) sidecar(r *sidecarRule) error {
	switch {
	case r.action == nil:
	case r.in.Retries == nil:
		r.action.RetryPolicy = sharedDefaultRetryPolicy
	default:
		r.action.RetryPolicy = retryPolicy(r.in.Retries)
	}
	return nil
}

// Default retries of sidecar routes without retries of their own (the
// default route of a service without a MeshRoute, and rules that set no
// retries): a request is retried only when it provably never reached the
// application — the connection failed, the upstream refused the HTTP/2
// stream, or the stream was reset before a byte of the request was sent.
// Such a retry cannot repeat a side effect, so it applies to every method;
// an answer (a 503 included) or a reset after the request went out is never
// retried by default. At most defaultRetries retries, each to another
// endpoint where there is one, within the cluster's retry budget
// (cluster_defaults.go).
const (
	defaultRetryOn = "connect-failure,refused-stream,reset-before-request"
	defaultRetries = 2
	// defaultHostSelectionAttempts is how often a retry picks again to
	// avoid an endpoint already tried.
	defaultHostSelectionAttempts = 5
)

var sharedDefaultRetryPolicy = mustValid(&routev3.RetryPolicy{
	RetryOn:    defaultRetryOn,
	NumRetries: wrapperspb.UInt32(defaultRetries),
	RetryHostPredicate: []*routev3.RetryPolicy_RetryHostPredicate{{
		Name:       "envoy.retry_host_predicates.previous_hosts",
		ConfigType: &routev3.RetryPolicy_RetryHostPredicate_TypedConfig{TypedConfig: mustPack(&previoushostsv3.PreviousHostsPredicate{})},
	}},
	HostSelectionRetryMaxAttempts: defaultHostSelectionAttempts,
})

func (retriesFeature) grpc(r *grpcRule) error {
	if r.action != nil {
		r.action.RetryPolicy = r.g.retryPolicy(r.in)
	}
	return nil
}

// warnGRPC says when gRPC clients retry fewer times than the rule asks.
func (retriesFeature) warnGRPC(g *grpcBuilder, in *ir.HTTPRoute) {
	if in.Retries != nil && in.Retries.Attempts > maxGRPCRetries {
		g.errs.warn(refOf(in.Source), "route %s: proxyless gRPC clients retry at most %d times, not %d", in.Name, maxGRPCRetries, in.Retries.Attempts)
	}
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

// maxGRPCRetries is the most retries a gRPC client makes (5 attempts in all).
const maxGRPCRetries = 4

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
