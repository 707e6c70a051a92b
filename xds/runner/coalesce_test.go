package runner

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestCoalescerDeliversLatest(t *testing.T) {
	c := NewCoalescer[int](20*time.Millisecond, time.Second)
	got := make(chan int, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := 1; i <= 100; i++ {
		c.Push(i)
	}
	go c.Run(ctx, func(_ context.Context, v int) { got <- v })
	select {
	case v := <-got:
		if v != 100 {
			t.Fatalf("delivered %d, want the latest value 100", v)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing delivered")
	}
}

// A steady stream of pushes, faster than the debounce, must still be delivered
// within the hard maximum rather than be starved.
func TestCoalescerMaxDelayPreventsStarvation(t *testing.T) {
	c := NewCoalescer[int](time.Hour, 50*time.Millisecond)
	got := make(chan int, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx, func(_ context.Context, v int) { got <- v })
	var wg sync.WaitGroup
	wg.Add(1)
	stop := make(chan struct{})
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
				c.Push(i)
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("a steady stream starved delivery past the maximum delay")
	}
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
