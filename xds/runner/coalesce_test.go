package runner

import (
	"context"
	"testing"
	"time"
)

const (
	testDebounce = 100 * time.Millisecond
	testMaxDelay = time.Second
)

// startCoalescer runs a coalescer on a manual clock; deliveries go to the channel.
func startCoalescer(t *testing.T) (*Coalescer[int], *manualClock, chan int) {
	t.Helper()
	clock := newManualClock()
	c := NewCoalescerWithClock[int](testDebounce, testMaxDelay, clock)
	got := make(chan int, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx, func(_ context.Context, v int) { got <- v }); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return c, clock, got
}

func receive(t *testing.T, got <-chan int) int {
	t.Helper()
	select {
	case v := <-got:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("nothing delivered")
		return 0
	}
}

func expectNothing(t *testing.T, got <-chan int) {
	t.Helper()
	select {
	case v := <-got:
		t.Fatalf("delivered %d during a burst, before the debounce passed", v)
	default:
	}
}

// A value after a quiet period goes out at once: the clock never moves.
func TestCoalescerDeliversLeadingEdgeAtOnce(t *testing.T) {
	c, _, got := startCoalescer(t)
	c.Push(1)
	if v := receive(t, got); v != 1 {
		t.Fatalf("delivered %d, want 1", v)
	}
}

// Values within Debounce of the last delivery wait for the burst to settle,
// and only the latest is delivered.
func TestCoalescerCoalescesBurstAfterDelivery(t *testing.T) {
	c, clock, got := startCoalescer(t)
	c.Push(1)
	receive(t, got)
	c.Push(2)
	clock.waitArmed(t, 2) // the quiet and the deadline timer
	for i := 3; i <= 50; i++ {
		c.Push(i)
		// the coalescer saw the value (quiet restarted) before the next, so
		// no wake is left to restart the quiet after the clock advances
		clock.waitResets(t, i-2)
	}
	expectNothing(t, got)
	clock.Advance(testDebounce)
	if v := receive(t, got); v != 50 {
		t.Fatalf("delivered %d, want the latest value 50", v)
	}
	expectNothing(t, got)
}

// After a quiet period following a delivery, the next value is again immediate.
func TestCoalescerLeadingEdgeAgainAfterQuiet(t *testing.T) {
	c, clock, got := startCoalescer(t)
	c.Push(1)
	receive(t, got)
	clock.waitReads(t, 1) // the delivery returned and its end was recorded
	clock.Advance(testDebounce)
	c.Push(2)
	if v := receive(t, got); v != 2 {
		t.Fatalf("delivered %d, want 2", v)
	}
}

// A steady stream of values, each within Debounce of the previous, is still
// delivered once MaxDelay has passed.
func TestCoalescerMaxDelayPreventsStarvation(t *testing.T) {
	c, clock, got := startCoalescer(t)
	c.Push(0)
	receive(t, got)
	c.Push(1)
	clock.waitArmed(t, 2)
	step := testDebounce / 2
	for i := 2; time.Duration(i-1)*step < testMaxDelay; i++ {
		clock.Advance(step)
		expectNothing(t, got)
		c.Push(i)
		clock.waitResets(t, i-1) // the coalescer saw the value: quiet restarts now
	}
	clock.Advance(step)
	receive(t, got)
}

func TestCoalescerStopsWithContext(t *testing.T) {
	c := NewCoalescer[int](time.Millisecond, time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx, func(context.Context, int) {}); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}
