package server

import (
	"testing"
	"time"
)

// TestConvergenceBookkeeping: a change converges when its last node ACKs;
// one whose nodes all left records nothing; changes past the bounds are
// dropped and forget the nodes they waited for.
func TestConvergenceBookkeeping(t *testing.T) {
	now := time.Unix(1000, 0)
	state := map[string]settlement{}
	var got []time.Duration
	c := newConvergence(func(d time.Duration) { got = append(got, d) }, func() time.Time { return now }, func(n string) settlement { return state[n] })

	state["a"], state["b"] = pending, inSync
	c.track(now.Add(-time.Second), []string{"a", "b"})
	now = now.Add(time.Second)
	state["a"] = inSync
	c.nodeChanged("a")
	if len(got) != 1 || got[0] != 2*time.Second {
		t.Fatalf("converged %v, want [2s]", got)
	}

	state["a"], state["b"] = pending, pending
	c.track(now, []string{"a", "b"})
	state["a"], state["b"] = left, left
	c.nodeChanged("a")
	c.nodeChanged("b")
	if len(got) != 1 || len(c.changes) != 0 || len(c.waiting) != 0 {
		t.Fatalf("a change whose nodes left: converged %v, %d pending, waiting %v", got, len(c.changes), c.waiting)
	}

	state["a"] = pending
	for range maxPendingChanges + 3 {
		c.track(now, []string{"a"})
	}
	if len(c.changes) != maxPendingChanges || c.waiting["a"] != maxPendingChanges {
		t.Fatalf("%d pending changes waiting %d times for a, want %d", len(c.changes), c.waiting["a"], maxPendingChanges)
	}
	now = now.Add(maxChangeAge + time.Second)
	c.nodeChanged("a")
	if len(c.changes) != 0 || len(c.waiting) != 0 || len(got) != 1 {
		t.Fatalf("after maxChangeAge: %d pending, waiting %v, converged %v", len(c.changes), c.waiting, got)
	}
}
