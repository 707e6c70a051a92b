package server

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestReviewGatePerPeerBudget(t *testing.T) {
	now := time.Unix(1000, 0)
	g := newReviewGate(ReviewLimits{MaxInFlight: 8, MaxInFlightPerPeer: 100, PerSecondPerPeer: 1, BurstPerPeer: 3}.WithDefaults(),
		func() time.Time { return now })
	ctx := context.Background()
	for i := range 3 {
		release, err := g.acquire(ctx, "10.0.0.1")
		if err != nil {
			t.Fatalf("review %d within the burst: %v", i, err)
		}
		release()
	}
	if _, err := g.acquire(ctx, "10.0.0.1"); !errors.Is(err, ErrReviewThrottled) {
		t.Fatalf("review past the burst: %v, want ErrReviewThrottled", err)
	}
	// Another peer has its own budget.
	release, err := g.acquire(ctx, "10.0.0.2")
	if err != nil {
		t.Fatalf("another peer: %v", err)
	}
	release()
	// One second later, one more review.
	now = now.Add(time.Second)
	release, err = g.acquire(ctx, "10.0.0.1")
	if err != nil {
		t.Fatalf("after a second: %v", err)
	}
	release()
	if _, err := g.acquire(ctx, "10.0.0.1"); !errors.Is(err, ErrReviewThrottled) {
		t.Fatalf("second review in that second: %v, want ErrReviewThrottled", err)
	}
}

func TestReviewGateInFlight(t *testing.T) {
	now := time.Unix(1000, 0)
	g := newReviewGate(ReviewLimits{MaxInFlight: 3, MaxInFlightPerPeer: 2, BurstPerPeer: 100}.WithDefaults(),
		func() time.Time { return now })
	ctx := context.Background()
	r1, err1 := g.acquire(ctx, "a")
	r2, err2 := g.acquire(ctx, "a")
	if err1 != nil || err2 != nil {
		t.Fatalf("two reviews of one peer: %v, %v", err1, err2)
	}
	if _, err := g.acquire(ctx, "a"); !errors.Is(err, ErrReviewThrottled) {
		t.Fatalf("third review in flight for one peer: %v, want ErrReviewThrottled", err)
	}
	r3, err := g.acquire(ctx, "b")
	if err != nil {
		t.Fatalf("another peer: %v", err)
	}
	// The global slots are taken: a fourth review waits, and gives up when
	// its context ends.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := g.acquire(cctx, "c"); !errors.Is(err, ErrReviewThrottled) {
		t.Fatalf("review with no global slot: %v, want ErrReviewThrottled", err)
	}
	// A waiting review gets the slot a finished one frees.
	got := make(chan error, 1)
	go func() {
		release, err := g.acquire(ctx, "c")
		if err == nil {
			release()
		}
		got <- err
	}()
	r1()
	if err := <-got; err != nil {
		t.Fatalf("waiting review: %v", err)
	}
	r2()
	r3()
	// Releases gave back the per-peer share.
	for range 2 {
		r, err := g.acquire(ctx, "a")
		if err != nil {
			t.Fatalf("after release: %v", err)
		}
		defer r()
	}
}

func TestReviewGateForgetsPeers(t *testing.T) {
	now := time.Unix(1000, 0)
	g := newReviewGate(ReviewLimits{}.WithDefaults(), func() time.Time { return now })
	for i := range maxTrackedPeers + 500 {
		release, err := g.acquire(context.Background(), fmt.Sprint("peer-", i))
		if err != nil {
			t.Fatal(err)
		}
		release()
		if i%1000 == 0 {
			now = now.Add(time.Minute) // buckets refill: the peers are idle again
		}
		if n := g.trackedPeers(); n > maxTrackedPeers {
			t.Fatalf("%d peers tracked, max %d", n, maxTrackedPeers)
		}
	}
}

func TestRefusalCacheIsBoundedAndExpires(t *testing.T) {
	auth := defaultAuth()
	c := newAuthCache(auth, time.Minute, ReviewLimits{RefusalCacheTTL: 10 * time.Second, BurstPerPeer: 1000})
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	c.max = 5
	ctx := context.Background()
	for i := range 50 {
		if _, _, err := c.authenticate(ctx, fmt.Sprint("junk-", i), "peer"); err == nil {
			t.Fatal("junk accepted")
		}
		if _, n := c.len(); n > c.max {
			t.Fatalf("%d refusals cached, max %d", n, c.max)
		}
	}
	calls := auth.calls.Load()
	if _, _, err := c.authenticate(ctx, "junk-49", "peer"); err == nil {
		t.Fatal("junk accepted")
	}
	if auth.calls.Load() != calls {
		t.Error("a refused token was reviewed again within the refusal TTL")
	}
	now = now.Add(11 * time.Second)
	if _, _, err := c.authenticate(ctx, "junk-49", "peer"); err == nil {
		t.Fatal("junk accepted")
	}
	if auth.calls.Load() != calls+1 {
		t.Error("a refused token was not reviewed again after the refusal TTL")
	}
	// An unavailable verifier is not cached as a refusal.
	auth.err = fmt.Errorf("%w: down", ErrAuthUnavailable)
	for range 2 {
		if _, _, err := c.authenticate(ctx, "later", "peer"); !errors.Is(err, ErrAuthUnavailable) {
			t.Fatalf("unavailable: %v", err)
		}
	}
	if auth.calls.Load() != calls+3 {
		t.Error("an unavailable review was cached")
	}
}
