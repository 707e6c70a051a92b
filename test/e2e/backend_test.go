package e2e

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

// backend is a real gRPC server on loopback standing in for one pod: it
// answers UnaryCall with its version as the hostname and counts calls.
type backend struct {
	testgrpc.UnimplementedTestServiceServer
	version string
	ip      string
	port    int32
	calls   atomic.Int64
	// inFlight counts calls being handled now; peak is the most seen at once.
	inFlight, peak atomic.Int64
	mu             sync.Mutex
	handle         func(ctx context.Context, n int64) error
}

// startBackend serves on ip:0 until the test ends.
func startBackend(t *testing.T, ip, version string) *backend {
	t.Helper()
	lis, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{version: version, ip: ip, port: int32(lis.Addr().(*net.TCPAddr).Port)}
	srv := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(srv, b)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return b
}

// setHandler makes each call run h first (n is the call's number, from 1);
// an error from h is the call's answer.
func (b *backend) setHandler(h func(ctx context.Context, n int64) error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.handle = h
}

func (b *backend) UnaryCall(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	n := b.calls.Add(1)
	now := b.inFlight.Add(1)
	defer b.inFlight.Add(-1)
	for {
		p := b.peak.Load()
		if now <= p || b.peak.CompareAndSwap(p, now) {
			break
		}
	}
	b.mu.Lock()
	h := b.handle
	b.mu.Unlock()
	if h != nil {
		if err := h(ctx, n); err != nil {
			return nil, err
		}
	}
	return &testgrpc.SimpleResponse{Hostname: b.version}, nil
}
