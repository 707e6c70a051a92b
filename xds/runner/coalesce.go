package runner

import (
	"context"
	"sync"
	"time"
)

// Coalescer hands on the latest of a stream of values: a value waits Debounce
// for newer ones, but never longer than MaxDelay after the first pending value,
// so a steady stream of changes cannot starve delivery.
type Coalescer[T any] struct {
	Debounce time.Duration
	MaxDelay time.Duration

	mu      sync.Mutex
	latest  T
	pending bool
	wake    chan struct{}
}

// NewCoalescer returns a Coalescer with the given debounce and hard maximum.
func NewCoalescer[T any](debounce, maxDelay time.Duration) *Coalescer[T] {
	return &Coalescer[T]{Debounce: debounce, MaxDelay: maxDelay, wake: make(chan struct{}, 1)}
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

// Run calls deliver with the latest value after each quiet period until ctx is done.
// deliver runs on Run's goroutine, one call at a time.
func (c *Coalescer[T]) Run(ctx context.Context, deliver func(context.Context, T)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		}
		if !c.waitQuiet(ctx) {
			return
		}
		if v, ok := c.take(); ok {
			deliver(ctx, v)
		}
	}
}

// waitQuiet waits until no value arrived for Debounce, or MaxDelay passed.
func (c *Coalescer[T]) waitQuiet(ctx context.Context) bool {
	deadline := time.NewTimer(c.MaxDelay)
	defer deadline.Stop()
	quiet := time.NewTimer(c.Debounce)
	defer quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return true
		case <-quiet.C:
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
