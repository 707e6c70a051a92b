package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Defaults of the TokenReview limits (Options.ReviewLimits).
const (
	DefaultMaxReviewsInFlight        = 16
	DefaultMaxReviewsInFlightPerPeer = 2
	DefaultReviewsPerSecondPerPeer   = 2
	DefaultReviewBurstPerPeer        = 10
	DefaultReviewQueueTimeout        = 10 * time.Second
	DefaultRefusalCacheTTL           = 10 * time.Second
	// maxTrackedPeers bounds the per-peer limiter's memory.
	maxTrackedPeers = 4096
)

// ReasonReviewThrottled is the refusal reason of a token that was not
// reviewed because its peer, or the server, has too many reviews going on.
const ReasonReviewThrottled = "review_throttled"

// ErrReviewThrottled marks a token that was not checked because of the
// review limits. Like ErrAuthUnavailable it says nothing about the token:
// the client should retry later.
var ErrReviewThrottled = errors.New("token review throttled")

// ReviewLimits bound the TokenReviews that unauthenticated clients can
// cause: each review of a token not in the cache is one API request.
type ReviewLimits struct {
	// MaxInFlight bounds the reviews running at once, for all peers. A
	// review waits for a slot at most QueueTimeout.
	MaxInFlight int
	// MaxInFlightPerPeer bounds the reviews running at once for one remote
	// IP address; more are refused at once.
	MaxInFlightPerPeer int
	// PerSecondPerPeer and BurstPerPeer are a token bucket per remote IP
	// address: the reviews a peer may start, sustained and at once.
	PerSecondPerPeer float64
	BurstPerPeer     int
	// QueueTimeout bounds the wait for a review slot.
	QueueTimeout time.Duration
	// RefusalCacheTTL is how long a refused token is refused again without
	// a review; negative turns the refusal cache off.
	RefusalCacheTTL time.Duration
}

// WithDefaults returns l with its zero fields set to the defaults.
func (l ReviewLimits) WithDefaults() ReviewLimits {
	if l.MaxInFlight <= 0 {
		l.MaxInFlight = DefaultMaxReviewsInFlight
	}
	if l.MaxInFlightPerPeer <= 0 {
		l.MaxInFlightPerPeer = DefaultMaxReviewsInFlightPerPeer
	}
	if l.PerSecondPerPeer <= 0 {
		l.PerSecondPerPeer = DefaultReviewsPerSecondPerPeer
	}
	if l.BurstPerPeer <= 0 {
		l.BurstPerPeer = DefaultReviewBurstPerPeer
	}
	if l.QueueTimeout <= 0 {
		l.QueueTimeout = DefaultReviewQueueTimeout
	}
	if l.RefusalCacheTTL == 0 {
		l.RefusalCacheTTL = DefaultRefusalCacheTTL
	}
	return l
}

// reviewGate admits reviews: a token bucket and an in-flight count per
// peer, and a global semaphore.
type reviewGate struct {
	limits ReviewLimits
	now    func() time.Time
	slots  chan struct{}

	mu    sync.Mutex
	peers map[string]*peerBudget
}

// peerBudget is one remote address's share.
type peerBudget struct {
	tokens   float64
	updated  time.Time
	inFlight int
}

func newReviewGate(l ReviewLimits, now func() time.Time) *reviewGate {
	return &reviewGate{limits: l, now: now, slots: make(chan struct{}, l.MaxInFlight), peers: map[string]*peerBudget{}}
}

// acquire admits one review for peer, waiting for a global slot at most
// QueueTimeout; release must be called when it is done. Errors wrap
// ErrReviewThrottled (or are ctx's).
func (g *reviewGate) acquire(ctx context.Context, peer string) (release func(), err error) {
	if err := g.takePeer(peer); err != nil {
		return nil, err
	}
	timer := time.NewTimer(g.limits.QueueTimeout)
	defer timer.Stop()
	select {
	case g.slots <- struct{}{}:
		return func() { <-g.slots; g.releasePeer(peer) }, nil
	case <-timer.C:
		g.releasePeer(peer)
		return nil, fmt.Errorf("%w: no review slot within %s", ErrReviewThrottled, g.limits.QueueTimeout)
	case <-ctx.Done():
		g.releasePeer(peer)
		return nil, fmt.Errorf("%w: %w", ErrReviewThrottled, ctx.Err())
	}
}

// takePeer charges one review to peer's bucket and in-flight count.
func (g *reviewGate) takePeer(peer string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	b := g.peers[peer]
	if b == nil {
		g.makeRoom(now)
		b = &peerBudget{tokens: float64(g.limits.BurstPerPeer), updated: now}
		g.peers[peer] = b
	}
	b.refill(now, g.limits)
	switch {
	case b.inFlight >= g.limits.MaxInFlightPerPeer:
		return fmt.Errorf("%w: %d reviews in flight for this peer", ErrReviewThrottled, b.inFlight)
	case b.tokens < 1:
		return fmt.Errorf("%w: more than %g reviews per second from this peer", ErrReviewThrottled, g.limits.PerSecondPerPeer)
	}
	b.tokens--
	b.inFlight++
	return nil
}

func (g *reviewGate) releasePeer(peer string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if b := g.peers[peer]; b != nil && b.inFlight > 0 {
		b.inFlight--
	}
}

func (b *peerBudget) refill(now time.Time, l ReviewLimits) {
	if elapsed := now.Sub(b.updated).Seconds(); elapsed > 0 {
		b.tokens = min(float64(l.BurstPerPeer), b.tokens+elapsed*l.PerSecondPerPeer)
	}
	b.updated = now
}

// makeRoom keeps the peer table under maxTrackedPeers: it forgets peers
// whose bucket is full again and that have nothing in flight (they are as
// if new), then, if still full, any idle peer. g.mu is held.
func (g *reviewGate) makeRoom(now time.Time) {
	if len(g.peers) < maxTrackedPeers {
		return
	}
	for k, b := range g.peers {
		b.refill(now, g.limits)
		if b.inFlight == 0 && b.tokens >= float64(g.limits.BurstPerPeer) {
			delete(g.peers, k)
		}
	}
	for k, b := range g.peers {
		if len(g.peers) < maxTrackedPeers {
			return
		}
		if b.inFlight == 0 {
			delete(g.peers, k)
		}
	}
}

func (g *reviewGate) trackedPeers() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.peers)
}

// peerHost is the IP address of a "host:port" remote address; the address
// itself when it has no port.
func peerHost(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}
