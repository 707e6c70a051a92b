// Package xdsclient is a small real ADS client for tests: it dials the xDS
// server over gRPC, subscribes, ACKs every response, and keeps the resources
// it was sent, so tests can poll for the config a proxy would hold.
package xdsclient

import (
	"context"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/anypb"
)

// State is what a client holds: type URL → resource name → resource.
type State map[string]map[string]*anypb.Any

// clone copies the maps (the resources themselves are not modified by anyone).
func (s State) clone() State {
	out := make(State, len(s))
	for typ, byName := range s {
		m := make(map[string]*anypb.Any, len(byName))
		for n, r := range byName {
			m[n] = r
		}
		out[typ] = m
	}
	return out
}

// base holds what both client kinds share: the connection, the state and the responses seen.
type base struct {
	node *corev3.Node
	conn *grpc.ClientConn

	mu        sync.Mutex
	state     State
	responses []Response
	err       error
}

// Response records one response: its type and the names it carried or removed.
type Response struct {
	TypeURL string
	Names   []string
	Removed []string
}

// dial connects without transport security unless opts say otherwise (a
// later WithTransportCredentials wins).
func dial(t testing.TB, addr, nodeID string, opts ...grpc.DialOption) *base {
	t.Helper()
	conn, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatalf("dialing xDS at %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &base{node: &corev3.Node{Id: nodeID}, conn: conn, state: State{}}
}

// Snapshot returns a copy of the state.
func (b *base) Snapshot() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state.clone()
}

// Responses returns the responses received so far, oldest first.
func (b *base) Responses() []Response {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Response(nil), b.responses...)
}

func (b *base) fail(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		b.err = err
	}
}

// WaitFor polls the state until check returns nil, failing the test at the deadline.
func (b *base) WaitFor(t testing.TB, timeout time.Duration, check func(State) error) State {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		b.mu.Lock()
		streamErr := b.err
		b.mu.Unlock()
		if streamErr != nil {
			t.Fatalf("xDS stream failed: %v", streamErr)
		}
		s := b.Snapshot()
		err := check(s)
		if err == nil {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("xDS state not reached within %s: %v", timeout, err)
		}
		<-tick.C
	}
}

func contextFor(t testing.TB) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}
