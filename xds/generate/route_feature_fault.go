package generate

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/anypb"

	commonfaultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// faultFeature injects delays and aborts: the route carries the fault
// filter's per-route config (the filter itself, empty, is in every outbound
// chain: filter_fault.go).
type faultFeature struct{}

func (faultFeature) name() string { return "fault" }

func (faultFeature) fields() []routeField {
	return []routeField{
		{path: "fault.delay", grpc: grpcSent, note: "the fault filter's per-route config"},
		{path: "fault.abort", grpc: grpcAdapted,
			note: "`httpStatus` sent as `grpc_status`, the code gRPC reports for that HTTP status (400 → INTERNAL, " +
				"401 → UNAUTHENTICATED, 403 → PERMISSION_DENIED, 404 → UNIMPLEMENTED, 429/502/503/504 → UNAVAILABLE, else UNKNOWN)"},
	}
}

func (faultFeature) check(in *ir.HTTPRoute) error {
	if in.Fault == nil || in.Fault.Delay == nil {
		return nil
	}
	return checkNotNegative("fault delay", &in.Fault.Delay.Delay)
}

// sidecar sets the rule's delay and abort as the route's fault config.
func (faultFeature) sidecar(r *sidecarRule) error {
	if !hasFault(r.in) {
		return nil
	}
	a, err := pack(httpFault(r.in.Fault))
	if err != nil {
		return err
	}
	if r.rt.TypedPerFilterConfig == nil {
		r.rt.TypedPerFilterConfig = map[string]*anypb.Any{}
	}
	r.rt.TypedPerFilterConfig[filterFault] = a
	return nil
}

// grpc sets the sidecar's delay, and the abort as the gRPC status a client
// sees for that HTTP status (gRPC's HTTP-to-status mapping), sent as
// grpc_status. A rule that does not forward has no fault.
func (faultFeature) grpc(r *grpcRule) error {
	if r.action == nil || !hasFault(r.in) {
		return nil
	}
	f := httpFault(r.in.Fault)
	if a := r.in.Fault.Abort; a != nil {
		f.Abort.ErrorType = &faultv3.FaultAbort_GrpcStatus{GrpcStatus: uint32(grpcStatusOf(a.HTTPStatus))}
	}
	cfg, err := pack(f)
	if err != nil {
		return err
	}
	r.rt.TypedPerFilterConfig = map[string]*anypb.Any{filterFault: cfg}
	return nil
}

func hasFault(in *ir.HTTPRoute) bool {
	return in.Fault != nil && (in.Fault.Delay != nil || in.Fault.Abort != nil)
}

func httpFault(in *ir.Fault) *faultv3.HTTPFault {
	out := &faultv3.HTTPFault{}
	if d := in.Delay; d != nil {
		out.Delay = &commonfaultv3.FaultDelay{
			FaultDelaySecifier: &commonfaultv3.FaultDelay_FixedDelay{FixedDelay: duration(d.Delay)},
			Percentage:         percent(d.Percent),
		}
	}
	if a := in.Abort; a != nil {
		out.Abort = &faultv3.FaultAbort{
			ErrorType:  &faultv3.FaultAbort_HttpStatus{HttpStatus: a.HTTPStatus},
			Percentage: percent(a.Percent),
		}
	}
	return out
}

// grpcStatusOf is the status a gRPC client reports for an HTTP status
// (https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md).
func grpcStatusOf(httpStatus uint32) codes.Code {
	switch httpStatus {
	case 400:
		return codes.Internal
	case 401:
		return codes.Unauthenticated
	case 403:
		return codes.PermissionDenied
	case 404:
		return codes.Unimplemented
	case 429, 502, 503, 504:
		return codes.Unavailable
	}
	return codes.Unknown
}
