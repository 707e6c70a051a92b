package server

import (
	"strings"
	"sync"
	"time"
)

// Per-key log budget: logBurst lines at once, then one per logInterval.
// Keys are a proxy's node ID or a peer's address, so one client cannot
// make the server log much, whatever it sends.
const (
	logBurst    = 5
	logInterval = 10 * time.Second
	// maxLogKeys bounds the limiter's memory; when full it starts over.
	maxLogKeys = 4096
	// maxLoggedValue bounds each client-supplied value in a log line.
	maxLoggedValue = 512
)

// logLimiter rate-limits log lines per key.
type logLimiter struct {
	now func() time.Time

	mu   sync.Mutex
	keys map[string]*logBudget
}

type logBudget struct {
	tokens     float64
	updated    time.Time
	suppressed int
}

func newLogLimiter() *logLimiter {
	return &logLimiter{now: time.Now, keys: map[string]*logBudget{}}
}

// allow reports whether a line for key may be logged now.
func (l *logLimiter) allow(key string) bool {
	ok, _ := l.allowN(key)
	return ok
}

// allowN is allow, and when it allows, how many lines of key were
// suppressed since the last one logged.
func (l *logLimiter) allowN(key string) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.keys[key]
	if b == nil {
		if len(l.keys) >= maxLogKeys {
			clear(l.keys)
		}
		b = &logBudget{tokens: logBurst, updated: now}
		l.keys[key] = b
	}
	b.tokens = min(logBurst, b.tokens+now.Sub(b.updated).Seconds()/logInterval.Seconds())
	b.updated = now
	if b.tokens < 1 {
		b.suppressed++
		return false, 0
	}
	b.tokens--
	n := b.suppressed
	b.suppressed = 0
	return true, n
}

// MaxNackMessage bounds the NACK message kept in ProxyStatus (and from
// there in object statuses); maxNonce a NACK's nonce.
const (
	MaxNackMessage = 4 << 10
	maxNonce       = 128
)

// truncate bounds a client-supplied string for a log line.
func truncate(s string) string { return truncateTo(s, maxLoggedValue) }

// truncateTo cuts s to at most n bytes (plus a marker), on a rune boundary.
func truncateTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "...(truncated)"
}
