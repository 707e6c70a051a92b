package server

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/go-logr/logr/testr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// waitTimeout bounds every wait in these tests; nothing waits for a fixed time.
const waitTimeout = 10 * time.Second

// testServer is a Server serving on loopback, and a client connection to it.
type testServer struct {
	*Server
	conn    *grpc.ClientConn
	changes chan string
	// stop cancels Serve's context and returns Serve's error; idempotent.
	stop func() error
}

// startServer serves on 127.0.0.1:0 until the test ends.
func startServer(t *testing.T) *testServer {
	t.Helper()
	changes := make(chan string, 1024)
	s := New(Options{
		Logger: testr.New(t),
		OnStatusChange: func(node string) {
			select {
			case changes <- node:
			default:
			}
		},
	})
	addr, stop := serveOnLoopback(t, s)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	ts := &testServer{Server: s, conn: conn, changes: changes, stop: stop}
	t.Cleanup(func() {
		_ = conn.Close()
		if err := ts.stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ts
}

// serveOnLoopback serves s on 127.0.0.1:0 and returns its address and a
// function that stops it and returns Serve's error (idempotent).
func serveOnLoopback(t *testing.T, s *Server) (string, func() error) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, lis) }()
	return lis.Addr().String(), sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(waitTimeout):
			return errors.New("serve did not return after its context was cancelled")
		}
	})
}

// set publishes resources and fails the test on error.
func (s *testServer) set(t *testing.T, node string, res map[string][]types.Resource) bool {
	t.Helper()
	changed, err := s.SetProxyResources(node, res)
	if err != nil {
		t.Fatalf("SetProxyResources: %v", err)
	}
	return changed
}

// mustStatus returns the node's status; SetProxyResources records the
// published versions before it returns.
func (s *testServer) mustStatus(t *testing.T, node string) ProxyStatus {
	t.Helper()
	st, ok := s.ProxyStatus(node)
	if !ok {
		t.Fatalf("no status for %s", node)
	}
	return st
}

// waitStatus polls the node's status until cond holds or the deadline passes.
func (s *testServer) waitStatus(t *testing.T, node, what string, cond func(ProxyStatus, bool) bool) ProxyStatus {
	t.Helper()
	var st ProxyStatus
	eventually(t, what, func() bool {
		var ok bool
		st, ok = s.ProxyStatus(node)
		return cond(st, ok)
	})
	return st
}

// eventually polls cond until it holds, failing the test after waitTimeout.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// bidi is a generated bidirectional xDS client stream.
type bidi[Req, Resp any] interface {
	Send(Req) error
	Recv() (Resp, error)
}

// xdsClient is a real gRPC xDS stream with a receive-with-deadline helper.
type xdsClient[Req, Resp any] struct {
	t      *testing.T
	stream bidi[Req, Resp]
	cancel context.CancelFunc
	resps  chan Resp
	errs   chan error
}

func newXDSClient[Req, Resp any](t *testing.T, open func(context.Context) (bidi[Req, Resp], error)) *xdsClient[Req, Resp] {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := open(ctx)
	if err != nil {
		cancel()
		t.Fatalf("open stream: %v", err)
	}
	c := &xdsClient[Req, Resp]{t: t, stream: stream, cancel: cancel, resps: make(chan Resp, 16), errs: make(chan error, 1)}
	go c.receive(ctx)
	t.Cleanup(cancel)
	return c
}

func (c *xdsClient[Req, Resp]) receive(ctx context.Context) {
	for {
		r, err := c.stream.Recv()
		if err != nil {
			c.errs <- err
			return
		}
		select {
		case c.resps <- r:
		case <-ctx.Done():
			return
		}
	}
}

func (c *xdsClient[Req, Resp]) send(req Req) {
	c.t.Helper()
	if err := c.stream.Send(req); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// recv returns the next response, failing the test if none arrives in time.
func (c *xdsClient[Req, Resp]) recv() Resp {
	c.t.Helper()
	select {
	case r := <-c.resps:
		return r
	case err := <-c.errs:
		c.t.Fatalf("stream ended: %v", err)
	case <-time.After(waitTimeout):
		c.t.Fatalf("no response within %s", waitTimeout)
	}
	panic("unreachable")
}

// recvErr waits for the stream to end and returns its error.
func (c *xdsClient[Req, Resp]) recvErr() error {
	c.t.Helper()
	for {
		select {
		case <-c.resps:
		case err := <-c.errs:
			return err
		case <-time.After(waitTimeout):
			c.t.Fatalf("stream still open after %s", waitTimeout)
		}
	}
}

// close cancels the stream, as a proxy going away does.
func (c *xdsClient[Req, Resp]) close() { c.cancel() }

type (
	sotwClient  = xdsClient[*discoveryv3.DiscoveryRequest, *discoveryv3.DiscoveryResponse]
	deltaClient = xdsClient[*discoveryv3.DeltaDiscoveryRequest, *discoveryv3.DeltaDiscoveryResponse]
)

func (s *testServer) sotw(t *testing.T) *sotwClient {
	t.Helper()
	ads := discoveryv3.NewAggregatedDiscoveryServiceClient(s.conn)
	return newXDSClient(t, func(ctx context.Context) (bidi[*discoveryv3.DiscoveryRequest, *discoveryv3.DiscoveryResponse], error) {
		return ads.StreamAggregatedResources(ctx)
	})
}

func (s *testServer) delta(t *testing.T) *deltaClient {
	t.Helper()
	ads := discoveryv3.NewAggregatedDiscoveryServiceClient(s.conn)
	return newXDSClient(t, func(ctx context.Context) (bidi[*discoveryv3.DeltaDiscoveryRequest, *discoveryv3.DeltaDiscoveryResponse], error) {
		return ads.DeltaAggregatedResources(ctx)
	})
}

func xdsNode(id string) *corev3.Node { return &corev3.Node{Id: id} }

// ackOf answers a state-of-the-world response positively.
func ackOf(resp *discoveryv3.DiscoveryResponse) *discoveryv3.DiscoveryRequest {
	return &discoveryv3.DiscoveryRequest{TypeUrl: resp.GetTypeUrl(), VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce()}
}

// deltaAckOf answers a delta response positively.
func deltaAckOf(resp *discoveryv3.DeltaDiscoveryResponse) *discoveryv3.DeltaDiscoveryRequest {
	return &discoveryv3.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()}
}
