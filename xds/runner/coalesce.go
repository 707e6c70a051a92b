package runner

import (
	"context"
	"sync"
	"time"
)

// Coalescer hands on the latest of a stream of values. A value that arrives
// after a quiet period (no delivery for Debounce) is delivered at once: the
// leading edge. Values that arrive within Debounce of the last delivery are a
// burst: they wait until no newer value came for Debounce, but never longer
// than MaxDelay after the first of them, so a steady stream of changes cannot
// starve delivery.
type Coalescer[T any] struct {
	Debounce time.Duration
	MaxDelay time.Duration
	clock    Clock

	mu      sync.Mutex
	latest  T
	pending bool
	wake    chan struct{}
	// lastDone is when the last delivery returned (zero before the first).
	lastDone time.Time
}

// NewCoalescer returns a Coalescer with the given debounce and hard maximum.
func NewCoalescer[T any](debounce, maxDelay time.Duration) *Coalescer[T] {
	return NewCoalescerWithClock[T](debounce, maxDelay, realClock{})
}

// NewCoalescerWithClock is NewCoalescer with the time source given (tests).
func NewCoalescerWithClock[T any](debounce, maxDelay time.Duration, clock Clock) *Coalescer[T] {
	return &Coalescer[T]{Debounce: debounce, MaxDelay: maxDelay, clock: clock, wake: make(chan struct{}, 1)}
}

// Push records v as the latest value; it never blocks.
func (c *Coalescer[T]) Push(v T) {
	c.mu.Lock()
	c.latest, c.pending = v, true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Run calls deliver with the latest value until ctx is done: at once after a
// quiet period, else after the burst settles. deliver runs on Run's
// goroutine, one call at a time.
func (c *Coalescer[T]) Run(ctx context.Context, deliver func(context.Context, T)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		}
		if c.inBurst() && !c.waitQuiet(ctx) {
			return
		}
		if v, ok := c.take(); ok {
			deliver(ctx, v)
			c.lastDone = c.clock.Now()
		}
	}
}

// inBurst reports whether the last delivery ended less than Debounce ago.
func (c *Coalescer[T]) inBurst() bool {
	return !c.lastDone.IsZero() && c.clock.Now().Sub(c.lastDone) < c.Debounce
}

// waitQuiet waits until no value arrived for Debounce, or MaxDelay passed.
func (c *Coalescer[T]) waitQuiet(ctx context.Context) bool {
	deadline := c.clock.NewTimer(c.MaxDelay)
	defer deadline.Stop()
	quiet := c.clock.NewTimer(c.Debounce)
	defer quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C():
			return true
		case <-quiet.C():
			return true
		case <-c.wake:
			quiet.Reset(c.Debounce)
		}
	}
}

func (c *Coalescer[T]) take() (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.latest, c.pending
	var zero T
	c.latest, c.pending = zero, false
	return v, ok
}

// Clock is the time source of a Coalescer.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer a Coalescer uses.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
	Reset(d time.Duration) bool
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.Timer.C }
