package netpod

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// App behaviour for the traffic-policy scenarios (policy_test.go).
const (
	// FailPathPrefix + pod + "/" + codes (comma-separated): the app of
	// that pod answers with the codes in turn (one per request, starting
	// again after the last), with the report; other pods answer 200.
	FailPathPrefix = "/fail/"
	// ResetPathPrefix + pod: the app of that pod closes the connection
	// without answering (after reading the request); other pods answer.
	ResetPathPrefix = "/reset/"
	// GRPCStream makes one server-streaming call to Target asking for
	// Count messages Interval apart, and prints one CallResult per
	// message (Pod, Body the message number) and one for how the stream
	// ended (OK when it ended cleanly).
	GRPCStream = "grpc-stream"
)

// failTurns counts the FailPathPrefix requests this app answered (one app
// per process).
var failTurns atomic.Uint64

// answerFail serves FailPathPrefix and ResetPathPrefix; false for other
// paths and other pods.
func answerFail(w http.ResponseWriter, r *http.Request, rep Report) bool {
	if pod, ok := strings.CutPrefix(r.URL.Path, ResetPathPrefix); ok && pod == rep.Pod {
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = conn.Close()
		}
		return true
	}
	rest, ok := strings.CutPrefix(r.URL.Path, FailPathPrefix)
	if !ok {
		return false
	}
	pod, list, _ := strings.Cut(rest, "/")
	if pod != rep.Pod {
		return false
	}
	codes := strings.Split(list, ",")
	code, err := strconv.Atoi(codes[(failTurns.Add(1)-1)%uint64(len(codes))])
	if err != nil || code < 200 || code > 599 {
		code = http.StatusBadRequest
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(rep)
	return true
}

// grpcStatusOf is the UnaryCall's answer to a request asking for a status
// code (grpc.testing's response_status): that code, else nil.
func grpcStatusOf(in *testgrpc.SimpleRequest) error {
	if s := in.GetResponseStatus(); s.GetCode() != 0 {
		return status.Error(codes.Code(s.GetCode()), s.GetMessage()) //nolint:gosec // a small status code from the test
	}
	return nil
}

// StreamingOutputCall sends one message per response parameter, each after
// its interval; a message's body is its number, its type the pod's name.
func (s *grpcServer) StreamingOutputCall(in *testgrpc.StreamingOutputCallRequest, stream grpc.ServerStreamingServer[testgrpc.StreamingOutputCallResponse]) error {
	for i, p := range in.GetResponseParameters() {
		select {
		case <-stream.Context().Done():
			return stream.Context().Err()
		case <-time.After(time.Duration(p.GetIntervalUs()) * time.Microsecond):
		}
		msg := &testgrpc.StreamingOutputCallResponse{Payload: &testgrpc.Payload{Body: []byte(s.name + " " + strconv.Itoa(i+1))}}
		if err := stream.Send(msg); err != nil {
			return err
		}
	}
	return nil
}

// grpcContext adds the config's headers to ctx as outgoing metadata.
func grpcContext(ctx context.Context, cfg AppConfig) context.Context {
	for k, v := range cfg.Headers {
		ctx = metadata.AppendToOutgoingContext(ctx, k, v)
	}
	return ctx
}

// grpcFailure is the CallResult of a failed gRPC call.
func grpcFailure(err error) CallResult {
	return CallResult{Error: err.Error(), GRPCCode: int(status.Code(err))}
}

func streamGRPC(ctx context.Context, cfg AppConfig) error {
	conn, err := grpc.NewClient(cfg.Target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	callCtx, cancel := context.WithTimeout(grpcContext(ctx, cfg), cfg.Timeout)
	defer cancel()
	req := &testgrpc.StreamingOutputCallRequest{}
	for range cfg.Count {
		req.ResponseParameters = append(req.ResponseParameters, &testgrpc.ResponseParameters{IntervalUs: int32(cfg.Interval.Microseconds())}) //nolint:gosec // seconds, not years
	}
	enc := json.NewEncoder(os.Stdout)
	stream, err := testgrpc.NewTestServiceClient(conn).StreamingOutputCall(callCtx, req)
	if err != nil {
		return enc.Encode(grpcFailure(err))
	}
	for n := 1; ; n++ {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return enc.Encode(CallResult{N: n, OK: true, Body: "end"})
		}
		if err != nil {
			r := grpcFailure(err)
			r.N = n
			return enc.Encode(r)
		}
		pod, body, _ := strings.Cut(string(msg.GetPayload().GetBody()), " ")
		if err := enc.Encode(CallResult{N: n, OK: true, Pod: pod, Body: body}); err != nil {
			return err
		}
	}
}
