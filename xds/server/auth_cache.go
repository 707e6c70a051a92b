package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// DefaultAuthCacheTTL is how long a successful token review is reused.
const DefaultAuthCacheTTL = 30 * time.Second

// maxAuthCacheEntries bounds each of the review caches (accepted and
// refused tokens); an entry is a hash, a Caller or a short message.
const maxAuthCacheEntries = 4096

// maxCachedRefusal bounds the message kept for a refused token.
const maxCachedRefusal = 256

// reviews counts the TokenReviews the server asked for, by result.
var reviews = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "capstan_xds_token_reviews_total",
	Help: "Token reviews the xDS server asked the Authenticator for, by result (authenticated, refused, unavailable).",
}, []string{"result"})

func init() {
	metrics.Registry.MustRegister(reviews)
	for _, r := range []string{"authenticated", "refused", "unavailable"} {
		reviews.WithLabelValues(r)
	}
}

// authCache remembers authentications, keyed by the SHA-256 of the token
// (the token itself is not kept): successes for ttl, refusals for the
// gate's RefusalCacheTTL, both bounded in number. Reviews of tokens in
// neither go through the gate.
type authCache struct {
	auth Authenticator
	ttl  time.Duration // <= 0: no caching of successes
	max  int
	now  func() time.Time
	gate *reviewGate

	mu       sync.Mutex
	entries  map[[sha256.Size]byte]cachedCaller
	refusals map[[sha256.Size]byte]cachedRefusal
}

type cachedCaller struct {
	caller Caller
	// expiry is the token's own (zero when it has none); expires is when
	// the entry does, never after expiry.
	expiry, expires time.Time
}

type cachedRefusal struct {
	msg     string
	expires time.Time
}

// errRefusedCached is a refusal answered from the refusal cache.
type errRefusedCached struct{ msg string }

func (e errRefusedCached) Error() string { return e.msg + " (cached refusal)" }

func newAuthCache(auth Authenticator, ttl time.Duration, limits ReviewLimits) *authCache {
	c := &authCache{auth: auth, ttl: ttl, max: maxAuthCacheEntries, now: time.Now,
		entries: map[[sha256.Size]byte]cachedCaller{}, refusals: map[[sha256.Size]byte]cachedRefusal{}}
	c.gate = newReviewGate(limits.WithDefaults(), func() time.Time { return c.now() })
	return c
}

// ErrTokenExpired: the token was valid, but its own expiry ("exp") has
// passed by the server's clock.
var ErrTokenExpired = errors.New("token expired")

// authenticate returns the caller of token and the token's expiry (zero
// when it has none), from the caches or from a review admitted by the
// gate for peer (the remote IP address). A token past its expiry is
// refused with ErrTokenExpired, cached or not.
func (c *authCache) authenticate(ctx context.Context, token, peer string) (Caller, time.Time, error) {
	key := sha256.Sum256([]byte(token))
	if e, err, ok := c.lookup(key); ok {
		return e.caller, e.expiry, err
	}
	release, err := c.gate.acquire(ctx, peer)
	if err != nil {
		return Caller{}, time.Time{}, err
	}
	defer release()
	caller, err := c.auth.Authenticate(ctx, token)
	switch {
	case errors.Is(err, ErrAuthUnavailable):
		reviews.WithLabelValues("unavailable").Inc()
		return Caller{}, time.Time{}, err
	case err != nil:
		reviews.WithLabelValues("refused").Inc()
		c.storeRefusal(key, redact(err.Error(), token))
		return Caller{}, time.Time{}, err
	}
	reviews.WithLabelValues("authenticated").Inc()
	// The Authenticator accepted the token: its claims can be read.
	expiry, _ := tokenExpiry(token)
	if !expiry.IsZero() && !c.now().Before(expiry) {
		return Caller{}, time.Time{}, fmt.Errorf("%w at %s", ErrTokenExpired, expiry.UTC().Format(time.RFC3339))
	}
	if c.ttl > 0 {
		c.store(key, caller, expiry)
	}
	return caller, expiry, nil
}

// lookup answers from the caches; ok is false on a miss.
func (c *authCache) lookup(key [sha256.Size]byte) (cachedCaller, error, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if e, ok := c.entries[key]; ok {
		switch {
		case !e.expiry.IsZero() && !now.Before(e.expiry):
			delete(c.entries, key)
			return cachedCaller{}, fmt.Errorf("%w at %s", ErrTokenExpired, e.expiry.UTC().Format(time.RFC3339)), true
		case now.Before(e.expires):
			return e, nil, true
		}
		delete(c.entries, key)
	}
	if r, ok := c.refusals[key]; ok {
		if now.Before(r.expires) {
			return cachedCaller{}, errRefusedCached{msg: r.msg}, true
		}
		delete(c.refusals, key)
	}
	return cachedCaller{}, nil, false
}

// store caches a success for ttl, and never past the token's expiry.
func (c *authCache) store(key [sha256.Size]byte, caller Caller, expiry time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	makeRoom(c.entries, c.max, func(e cachedCaller) bool { return !now.Before(e.expires) })
	expires := now.Add(c.ttl)
	if !expiry.IsZero() && expiry.Before(expires) {
		expires = expiry
	}
	c.entries[key] = cachedCaller{caller: caller, expiry: expiry, expires: expires}
}

func (c *authCache) storeRefusal(key [sha256.Size]byte, msg string) {
	ttl := c.gate.limits.RefusalCacheTTL
	if ttl <= 0 {
		return
	}
	if len(msg) > maxCachedRefusal {
		msg = msg[:maxCachedRefusal] + "..."
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	makeRoom(c.refusals, c.max, func(r cachedRefusal) bool { return !now.Before(r.expires) })
	c.refusals[key] = cachedRefusal{msg: msg, expires: now.Add(ttl)}
}

// makeRoom leaves at most max-1 entries in m: expired ones go first, then
// arbitrary ones (they are only a cache).
func makeRoom[V any](m map[[sha256.Size]byte]V, maxEntries int, expired func(V) bool) {
	if len(m) < maxEntries {
		return
	}
	for k, v := range m {
		if expired(v) {
			delete(m, k)
		}
	}
	for k := range m {
		if len(m) < maxEntries {
			return
		}
		delete(m, k)
	}
}

// len is the number of cached successes and refusals.
func (c *authCache) len() (accepted, refused int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries), len(c.refusals)
}

// AuthCacheLen returns how many accepted and refused tokens the server's
// authentication caches hold (0, 0 without authentication), for
// diagnostics and tests.
func (s *Server) AuthCacheLen() (accepted, refused int) {
	if s.auth == nil {
		return 0, 0
	}
	return s.auth.len()
}
