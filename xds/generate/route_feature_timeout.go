package generate

import (
	"fmt"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// timeoutFeature bounds the whole request, retries included. Sidecars without
// a timeout get none (noTimeout), not Envoy's 15s default.
type timeoutFeature struct{}

func (timeoutFeature) name() string { return "timeout" }

func (timeoutFeature) fields() []routeField {
	return []routeField{{path: "timeout", grpc: grpcAdapted,
		note: "sent as `max_stream_duration` (gRPC ignores `RouteAction.timeout`); a zero timeout is not sent"}}
}

func (timeoutFeature) check(in *ir.HTTPRoute) error { return checkNotNegative("timeout", in.Timeout) }

func (timeoutFeature) sidecar(r *sidecarRule) error {
	if r.action != nil && r.in.Timeout != nil {
		r.action.Timeout = duration(*r.in.Timeout)
	}
	return nil
}

func (timeoutFeature) grpc(r *grpcRule) error {
	if r.action != nil && r.in.Timeout != nil && *r.in.Timeout > 0 {
		r.action.MaxStreamDuration = &routev3.RouteAction_MaxStreamDuration{MaxStreamDuration: duration(*r.in.Timeout)}
	}
	return nil
}

// checkNotNegative refuses a negative duration, which Envoy does not accept.
func checkNotNegative(name string, d *ir.Duration) error {
	if d != nil && *d < 0 {
		return fmt.Errorf("%s %s is negative", name, d.Std())
	}
	return nil
}
