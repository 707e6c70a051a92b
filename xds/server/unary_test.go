package server

import (
	"context"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// unaryMethods lists every unary RPC the server registers, as full method
// names, so a service added later is covered too.
func unaryMethods(t *testing.T, s *Server) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gs := s.newGRPCServer(ctx)
	defer gs.Stop()
	var out []string
	for svc, info := range gs.GetServiceInfo() {
		for _, m := range info.Methods {
			if !m.IsClientStream && !m.IsServerStream {
				out = append(out, "/"+svc+"/"+m.Name)
			}
		}
	}
	if len(out) < 5 {
		t.Fatalf("found %d unary methods (%v), want at least the five Fetch RPCs", len(out), out)
	}
	return out
}

// TestUnaryCallsRefusedWithAuthentication calls every unary RPC with no
// token, a junk token, another pod's token and the node's own token: each
// is refused with PermissionDenied, returns nothing and is counted.
func TestUnaryCallsRefusedWithAuthentication(t *testing.T) {
	e := startAuthServer(t, defaultAuth(), defaultPods(), 0)
	node := testNode
	if _, err := e.SetProxyResources(node, sidecarConfig(t, edsCluster("c1", time.Second))); err != nil {
		t.Fatal(err)
	}
	conn := e.conn(t)
	tokens := map[string][]string{
		"no token":          nil,
		"junk token":        {"authorization", "Bearer junk"},
		"another pod token": {"authorization", "Bearer " + otherToken},
		"its own token":     {"authorization", "Bearer " + goodToken},
	}
	for _, method := range unaryMethods(t, e.Server) {
		for name, md := range tokens {
			before := authFailureCount(t, ReasonUnaryCall)
			ctx := withMD(md...)(context.Background())
			req := &discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: node}, TypeUrl: resourcev3.ClusterType}
			resp := &discoveryv3.DiscoveryResponse{}
			err := conn.Invoke(ctx, method, req, resp)
			if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), ReasonUnaryCall) {
				t.Errorf("%s with %s: %v, want PermissionDenied (%s)", method, name, err, ReasonUnaryCall)
			}
			if len(resp.GetResources()) != 0 || resp.GetVersionInfo() != "" {
				t.Errorf("%s with %s returned a response: %v", method, name, resp)
			}
			if got := authFailureCount(t, ReasonUnaryCall); got != before+1 {
				t.Errorf("%s with %s: auth failures{%s} = %v, want %v", method, name, ReasonUnaryCall, got, before+1)
			}
		}
	}
	if e.auth.calls.Load() != 0 {
		t.Errorf("unary calls caused %d token reviews, want none", e.auth.calls.Load())
	}
}

// TestOnFetchRequestRefusesWithAuthentication: the callbacks refuse a Fetch
// on their own, should the interceptor ever be bypassed.
func TestOnFetchRequestRefusesWithAuthentication(t *testing.T) {
	s := New(Options{Authenticator: defaultAuth(), Pods: defaultPods()})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gs := s.newGRPCServer(ctx)
	defer gs.Stop()
	cb := &callbacks{refuseFetch: s.refuseUnaryCall}
	req := &discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: testNode}, TypeUrl: resourcev3.SecretType}
	if err := cb.OnFetchRequest(metadata.NewIncomingContext(ctx, metadata.MD{}), req); status.Code(err) != codes.PermissionDenied {
		t.Errorf("OnFetchRequest with authentication: %v, want PermissionDenied", err)
	}
	if err := (&callbacks{}).OnFetchRequest(ctx, req); err != nil {
		t.Errorf("OnFetchRequest without authentication: %v, want nil", err)
	}
}

// TestUnaryCallsServedWithoutAuthentication: without an Authenticator (local
// development) Fetch still works, so the refusal above is the auth's doing.
func TestUnaryCallsServedWithoutAuthentication(t *testing.T) {
	ts := startServer(t)
	node := testNode
	ts.set(t, node, sidecarConfig(t, edsCluster("c1", time.Second)))
	resp := &discoveryv3.DiscoveryResponse{}
	req := &discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: node}, TypeUrl: resourcev3.ClusterType}
	if err := ts.conn.Invoke(context.Background(), "/envoy.service.cluster.v3.ClusterDiscoveryService/FetchClusters", req, resp); err != nil {
		t.Fatalf("FetchClusters without authentication: %v", err)
	}
	if len(resp.GetResources()) != 1 {
		t.Errorf("FetchClusters returned %d resources, want 1", len(resp.GetResources()))
	}
}

var _ grpc.UnaryServerInterceptor = (*Server)(nil).refuseUnary
