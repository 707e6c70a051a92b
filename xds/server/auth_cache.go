package server

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"
)

// DefaultAuthCacheTTL is how long a successful token review is reused.
const DefaultAuthCacheTTL = 30 * time.Second

// maxAuthCacheEntries bounds the review cache.
const maxAuthCacheEntries = 4096

// authCache remembers successful authentications for a short time, keyed by
// the SHA-256 of the token (the token itself is not kept). Failures are not
// cached.
type authCache struct {
	auth Authenticator
	ttl  time.Duration // <= 0: no caching
	max  int
	now  func() time.Time

	mu      sync.Mutex
	entries map[[sha256.Size]byte]cachedCaller
}

type cachedCaller struct {
	caller  Caller
	expires time.Time
}

func newAuthCache(auth Authenticator, ttl time.Duration) *authCache {
	return &authCache{auth: auth, ttl: ttl, max: maxAuthCacheEntries, now: time.Now, entries: map[[sha256.Size]byte]cachedCaller{}}
}

func (c *authCache) authenticate(ctx context.Context, token string) (Caller, error) {
	if c.ttl <= 0 {
		return c.auth.Authenticate(ctx, token)
	}
	key := sha256.Sum256([]byte(token))
	c.mu.Lock()
	e, ok := c.entries[key]
	if ok && c.now().After(e.expires) {
		delete(c.entries, key)
		ok = false
	}
	c.mu.Unlock()
	if ok {
		return e.caller, nil
	}
	caller, err := c.auth.Authenticate(ctx, token)
	if err != nil {
		return Caller{}, err
	}
	c.store(key, caller)
	return caller, nil
}

func (c *authCache) store(key [sha256.Size]byte, caller Caller) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.entries) >= c.max {
		for k, e := range c.entries {
			if now.After(e.expires) {
				delete(c.entries, k)
			}
		}
	}
	// Still full: drop arbitrary entries; they are only a cache.
	for k := range c.entries {
		if len(c.entries) < c.max {
			break
		}
		delete(c.entries, k)
	}
	c.entries[key] = cachedCaller{caller: caller, expires: now.Add(c.ttl)}
}

func (c *authCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
