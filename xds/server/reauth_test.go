package server

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	clocktesting "k8s.io/utils/clock/testing"
)

// jwtExpiring is an unsigned JWT-shaped token with an "exp" claim; the
// fake authenticator accepts it like a real one.
func jwtExpiring(exp time.Time) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none"}`)) + "." + enc(fmt.Appendf(nil, `{"exp":%d}`, exp.Unix())) + ".sig"
}

// TestAuthCacheHonoursTokenExpiry: a cached review is not used past the
// token's own expiry, even within the cache TTL.
func TestAuthCacheHonoursTokenExpiry(t *testing.T) {
	now := time.Unix(100000, 0)
	exp := now.Add(20 * time.Second)
	tok := jwtExpiring(exp)
	auth := defaultAuth()
	auth.callers[tok] = webCaller
	c := newAuthCache(auth, DefaultAuthCacheTTL, ReviewLimits{})
	c.now = func() time.Time { return now }
	ctx := context.Background()
	if _, got, err := c.authenticate(ctx, tok, "p"); err != nil || !got.Equal(exp) {
		t.Fatalf("before expiry: expiry %v, %v; want %v, nil", got, err, exp)
	}
	now = exp.Add(-time.Second)
	if _, _, err := c.authenticate(ctx, tok, "p"); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	if auth.calls.Load() != 1 {
		t.Fatalf("%d reviews, want 1 (cached)", auth.calls.Load())
	}
	now = exp.Add(time.Second) // within the 30s cache TTL, past the token's expiry
	if _, _, err := c.authenticate(ctx, tok, "p"); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("past expiry: %v, want ErrTokenExpired", err)
	}
	// Not cached any more: a review that accepts it is still refused.
	if _, _, err := c.authenticate(ctx, tok, "p"); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("past expiry, reviewed: %v, want ErrTokenExpired", err)
	}
}

// mutablePods is a PodLookup tests can change.
type mutablePods struct {
	mu   sync.Mutex
	pods fakePods
}

func (m *mutablePods) Pod(namespace, name string) (string, string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pods.Pod(namespace, name)
}

func (m *mutablePods) set(key string, v *[2]string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v == nil {
		delete(m.pods, key)
		return
	}
	m.pods[key] = *v
}

// openServed opens an authenticated delta stream for testNode and waits
// for its clusters.
func openServed(t *testing.T, e *authEnv, token string) *deltaClient {
	t.Helper()
	d := e.deltaStream(t, "authorization", "Bearer "+token)
	d.send(&discoveryv3.DeltaDiscoveryRequest{Node: xdsNode(testNode), TypeUrl: resourcev3.ClusterType})
	if got := deltaNames(d.recv()); len(got) != 1 {
		t.Fatalf("clusters = %v", got)
	}
	return d
}

func wantClosed(t *testing.T, d *deltaClient, code codes.Code, reason string) {
	t.Helper()
	err := d.recvErr()
	if status.Code(err) != code || !strings.Contains(err.Error(), reason) {
		t.Fatalf("stream ended with %v, want %v (%s)", err, code, reason)
	}
}

func TestStreamClosedWhenTokenExpires(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	tok := jwtExpiring(clk.Now().Add(10 * time.Minute))
	auth := defaultAuth()
	auth.callers[tok] = webCaller
	e := startOptsServer(t, Options{Authenticator: auth, Pods: defaultPods(), Clock: clk, RecheckInterval: time.Second})
	if _, err := e.SetProxyResources(testNode, sidecarConfig(t, edsCluster("c1", time.Second))); err != nil {
		t.Fatal(err)
	}
	d := openServed(t, e, tok)
	eventually(t, "the recheck ticker", clk.HasWaiters)
	clk.Step(11 * time.Minute)
	wantClosed(t, d, codes.Unauthenticated, ReasonTokenExpired)
	// The same token on a new stream is refused too.
	d = e.deltaStream(t, "authorization", "Bearer "+tok)
	_ = d.stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: xdsNode(testNode), TypeUrl: resourcev3.ClusterType})
	wantClosed(t, d, codes.Unauthenticated, ReasonTokenExpired)
}

func TestStreamClosedWhenPodGoesOrIsReplaced(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	pods := &mutablePods{pods: defaultPods()}
	e := startOptsServer(t, Options{Authenticator: defaultAuth(), Pods: pods, Clock: clk, RecheckInterval: time.Hour})
	if _, err := e.SetProxyResources(testNode, sidecarConfig(t, edsCluster("c1", time.Second))); err != nil {
		t.Fatal(err)
	}

	// Deleted: RecheckPod (what the pod watcher calls) closes it at once.
	d := openServed(t, e, goodToken)
	e.RecheckPod("shop", "web-0") // still there: nothing happens
	pods.set("shop/web-0", nil)
	e.RecheckPod("shop", "other") // another pod: nothing happens
	e.RecheckPod("shop", "web-0")
	wantClosed(t, d, codes.PermissionDenied, ReasonUnknownPod)

	// Replaced (same name, new UID): the periodic recheck closes it.
	pods.set("shop/web-0", &[2]string{"uid-web-0", "web"})
	d = openServed(t, e, goodToken)
	pods.set("shop/web-0", &[2]string{"uid-web-0-new", "web"})
	eventually(t, "the recheck ticker", clk.HasWaiters)
	clk.Step(time.Hour)
	wantClosed(t, d, codes.PermissionDenied, ReasonPodUIDMismatch)
}
