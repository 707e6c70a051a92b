package server

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ReasonUnaryCall is the refusal reason of a unary xDS call (Fetch*) while
// streams are authenticated.
const ReasonUnaryCall = "unary_call_refused"

// errUnaryRefused is what a client of a unary xDS call is told. The call is
// refused whatever credentials it carries: Envoy and gRPC clients only use
// streams, and the unary Fetch RPCs would answer from the snapshot of
// whatever node ID the request names, outside the stream's pod binding.
var errUnaryRefused = status.Error(codes.PermissionDenied,
	"xDS call refused: "+ReasonUnaryCall+": unary Fetch RPCs are not served, use a discovery stream")

// refuseUnary is the unary interceptor installed when streams are
// authenticated: it refuses every unary RPC of every registered service
// before its handler runs.
func (s *Server) refuseUnary(ctx context.Context, _ any, info *grpc.UnaryServerInfo, _ grpc.UnaryHandler) (any, error) {
	return nil, s.refuseUnaryCall(ctx, info.FullMethod)
}

// refuseUnaryCall counts and logs a refused unary call.
func (s *Server) refuseUnaryCall(ctx context.Context, method string) error {
	ref := &refusal{reason: ReasonUnaryCall, code: codes.PermissionDenied, detail: "unary call " + method}
	_ = s.refuse(ctx, ref, "", nil)
	return errUnaryRefused
}
