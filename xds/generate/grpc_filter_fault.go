package generate

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/anypb"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// grpcFaultFilter is the fault filter's per-route config for gRPC clients:
// the sidecar's delay, and the abort as the gRPC status a client sees for
// that HTTP status (gRPC's HTTP-to-status mapping), sent as grpc_status.
type grpcFaultFilter struct{}

// PatchRoute sets the rule's delay and abort as the route's fault config.
func (grpcFaultFilter) PatchRoute(rt *routev3.Route, in *ir.HTTPRoute) error {
	if in.Fault == nil || (in.Fault.Delay == nil && in.Fault.Abort == nil) {
		return nil
	}
	f := httpFault(in.Fault)
	if a := in.Fault.Abort; a != nil {
		f.Abort.ErrorType = &faultv3.FaultAbort_GrpcStatus{GrpcStatus: uint32(grpcStatusOf(a.HTTPStatus))}
	}
	cfg, err := pack(f)
	if err != nil {
		return err
	}
	rt.TypedPerFilterConfig = map[string]*anypb.Any{filterFault: cfg}
	return nil
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
