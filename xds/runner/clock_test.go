package runner

import (
	"sync"
	"testing"
	"time"
)

// manualClock is a Clock that moves only when the test advances it, so the
// coalescer tests depend on no real time.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*manualTimer
	resets int
	// reads counts the calls of Now: the coalescer reads the clock when a
	// delivery returns, so a test can wait for that before advancing.
	reads int
}

type manualTimer struct {
	clock *manualClock
	c     chan time.Time
	at    time.Time
	armed bool
}

func newManualClock() *manualClock { return &manualClock{now: time.Unix(1_000_000, 0)} }

func (m *manualClock) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	return m.now
}

func (m *manualClock) NewTimer(d time.Duration) Timer {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := &manualTimer{clock: m, c: make(chan time.Time, 1), at: m.now.Add(d), armed: true}
	m.timers = append(m.timers, t)
	return t
}

// Advance moves the clock and fires the timers that are due.
func (m *manualClock) Advance(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.now = m.now.Add(d)
	for _, t := range m.timers {
		if t.armed && !t.at.After(m.now) {
			t.armed = false
			t.c <- m.now
		}
	}
}

// armed is the number of timers that are waiting.
func (m *manualClock) armed() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, t := range m.timers {
		if t.armed {
			n++
		}
	}
	return n
}

// waitArmed polls until n timers wait: the coalescer is then inside waitQuiet.
func (m *manualClock) waitArmed(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for m.armed() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d timers armed, want %d", m.armed(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitReads polls until the clock was read n times in all.
func (m *manualClock) waitReads(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m.mu.Lock()
		got := m.reads
		m.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("clock read %d times, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitResets polls until timers were reset n times in all.
func (m *manualClock) waitResets(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m.mu.Lock()
		got := m.resets
		m.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d timer resets, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func (t *manualTimer) C() <-chan time.Time { return t.c }

func (t *manualTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	was := t.armed
	t.armed = false
	return was
}

func (t *manualTimer) Reset(d time.Duration) bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	was := t.armed
	t.at, t.armed = t.clock.now.Add(d), true
	t.clock.resets++
	select { // drop a fire not received yet, as time.Timer does since Go 1.23
	case <-t.c:
	default:
	}
	return was
}
