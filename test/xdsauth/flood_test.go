package xdsauth

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/capstanmesh/capstan/test/xdsclient"
	"github.com/capstanmesh/capstan/xds/auth/kubeauth"
	"github.com/capstanmesh/capstan/xds/server"
)

// TestJunkTokenFloodIsBounded: one client floods junk tokens on xDS
// streams and at the token exchange. A legitimate proxy (another peer)
// still gets its config, and the TokenReviews the flood causes stay within
// the per-peer budget: the burst, plus the sustained rate for the time the
// flood ran, plus the proxy's own review. At most the attacker's in-flight
// share plus the proxy's review ever run at once, and the caches stay
// within their bounds.
func TestJunkTokenFloodIsBounded(t *testing.T) {
	ns := env.NewNamespace(t)
	web := newWorkload(t, ns, "web", "web-0", "10.0.6.1")
	auth := &countingAuth{inner: &kubeauth.TokenReviewAuthenticator{Client: env.Client, Audience: kubeauth.XDSTokenAudience}}
	s := startTLSServerWith(t, func(o *server.Options) { o.Authenticator = auth })
	s.publish(t, web.nodeID)
	tok := web.token(t, kubeauth.XDSTokenAudience)

	ctx, stopFlood := context.WithCancel(context.Background())
	defer stopFlood()
	start := time.Now()
	stats := flood(ctx, t, s, 8)
	// Let the flood get going: well past the per-peer burst.
	waitFor(t, "the flood to get going", func() bool {
		return stats.streams.Load() > 100 && stats.exchanges.Load() > 100
	})

	c := xdsclient.DialDeltaWith(t, s.addr, web.nodeID, grpc.WithTransportCredentials(
		credentials.NewTLS(&tls.Config{RootCAs: meshRoots(t), ServerName: xdsServiceName})), xdsclient.WithBearerToken(tok))
	c.Subscribe(t, resourcev3.ClusterType)
	c.WaitFor(t, waitTimeout, func(st xdsclient.State) error {
		if _, ok := st[resourcev3.ClusterType][clusterName]; !ok {
			return errNotYet
		}
		return nil
	})
	stopFlood()
	elapsed := time.Since(start)
	attempts := stats.streams.Load() + stats.exchanges.Load()

	budget := int64(server.DefaultReviewBurstPerPeer) + int64(elapsed.Seconds()*server.DefaultReviewsPerSecondPerPeer) + 1 + 1
	if got := auth.calls.Load(); got > budget {
		t.Errorf("%d junk attempts in %s caused %d TokenReviews, want at most %d", attempts, elapsed, got, budget)
	}
	if got, want := auth.maxConcurrent(), int64(server.DefaultMaxReviewsInFlightPerPeer+1); got > want {
		t.Errorf("%d TokenReviews ran at once, want at most %d (the attacker's share and the proxy's)", got, want)
	}
	accepted, refused := s.AuthCacheLen()
	if accepted > 1 || refused > int(budget) {
		t.Errorf("auth caches hold %d accepted and %d refused tokens, want at most 1 and %d", accepted, refused, budget)
	}
	if throttled := authFailures(t, server.ReasonReviewThrottled); throttled == 0 {
		t.Error("no review was throttled: the flood was not refused by the limits")
	}
	t.Logf("%d junk attempts in %s: %d TokenReviews", attempts, elapsed, auth.calls.Load())
}

// waitFor polls cond until it holds, failing the test at waitTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}
