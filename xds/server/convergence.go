package server

import (
	"slices"
	"sync"
	"time"
)

// Bounds of the changes waiting to converge: a change some proxy never
// ACKs (it NACKed, or its config changed again in a way it never answers)
// is dropped, unrecorded, after maxChangeAge or once maxPendingChanges
// newer ones wait. NACKs have their own metric.
const (
	maxPendingChanges = 64
	maxChangeAge      = 10 * time.Minute
)

// convergence measures, per change, the time from the change being
// observed to every node it affected having ACKed the config it caused.
// A node settles a change when it is in sync (ProxyStatus.InSync: it ACKed
// the version currently published, which may be a later change's) or when
// it has no open stream any more (a disconnected node gets its config when
// it connects again, which is not the change converging). A change
// converges when every node settled it and at least one by ACKing; one
// whose nodes all left is dropped.
type convergence struct {
	observe func(time.Duration)
	now     func() time.Time
	// settled tells whether a node settles the changes waiting for it.
	settled func(node string) settlement

	mu      sync.Mutex
	changes []*change
	// waiting counts, per node, the pending changes waiting for it.
	waiting map[string]int
}

// settlement is where a node stands for the changes waiting for it.
type settlement int

const (
	// pending: the node has an open stream and is not in sync.
	pending settlement = iota
	// inSync: the node ACKed, for every type, the config published to it.
	inSync
	// left: the node has no open stream.
	left
)

// change is one change waiting for nodes to settle it.
type change struct {
	observed time.Time
	nodes    map[string]bool
	// acked: some node settled the change by ACKing.
	acked bool
}

func newConvergence(observe func(time.Duration), now func() time.Time, settled func(string) settlement) *convergence {
	return &convergence{observe: observe, now: now, settled: settled, waiting: map[string]int{}}
}

// track starts waiting for the nodes a change observed at observed has
// published new config to. Nodes already settled are not waited for; when
// none is left and some is in sync, the change converged already.
func (c *convergence) track(observed time.Time, nodes []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := &change{observed: observed, nodes: map[string]bool{}}
	for _, n := range nodes {
		switch c.settled(n) {
		case pending:
			ch.nodes[n] = true
		case inSync:
			ch.acked = true
		case left:
		}
	}
	if len(ch.nodes) == 0 {
		if ch.acked {
			c.observe(c.now().Sub(observed))
		}
		return
	}
	for n := range ch.nodes {
		c.waiting[n]++
	}
	c.changes = append(c.changes, ch)
	c.expire()
}

// nodeChanged is called after a node's status changed (an ACK, a stream
// closed, config published): the changes it settles may have converged.
func (c *convergence) nodeChanged(node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waiting[node] == 0 {
		c.expire()
		return
	}
	st := c.settled(node)
	if st == pending {
		c.expire()
		return
	}
	delete(c.waiting, node)
	now := c.now()
	c.changes = slices.DeleteFunc(c.changes, func(ch *change) bool {
		if !ch.nodes[node] {
			return false
		}
		delete(ch.nodes, node)
		ch.acked = ch.acked || st == inSync
		if len(ch.nodes) > 0 {
			return false
		}
		if ch.acked {
			c.observe(now.Sub(ch.observed))
		}
		return true
	})
	c.expire()
}

// expire drops the changes past the bounds. c.mu is held.
func (c *convergence) expire() {
	now := c.now()
	drop := 0
	for i, ch := range c.changes {
		if len(c.changes)-i > maxPendingChanges || now.Sub(ch.observed) > maxChangeAge {
			drop = i + 1
		}
	}
	for _, ch := range c.changes[:drop] {
		for n := range ch.nodes {
			if c.waiting[n]--; c.waiting[n] <= 0 {
				delete(c.waiting, n)
			}
		}
	}
	c.changes = slices.Delete(c.changes, 0, drop)
}

// TrackConvergence records when the config a change caused has converged:
// observed is when the change was observed (the runner's first input of
// the push), nodes the nodes whose config the push changed. Once every one
// of them with an open stream has ACKed its current config, the time since
// observed goes to the Observer's Converged. A change that published to no
// connected node records nothing.
func (s *Server) TrackConvergence(observed time.Time, nodes []string) {
	connected := slices.DeleteFunc(slices.Clone(nodes), func(n string) bool { return s.tracker.openStreams(n) == 0 })
	if len(connected) == 0 {
		return
	}
	s.convergence.track(observed, connected)
}
