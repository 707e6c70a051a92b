package certificates

import (
	"testing"
	"time"

	"github.com/capstanmesh/capstan/pki"
)

// untrusting is a pki.ProxyRoots answering a fixed count.
type untrusting int

func (u untrusting) Untrusting([]string) int { return int(u) }

func TestTransitionEnd(t *testing.T) {
	since := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	open := transitionCheck{open: true, since: since, oldRoots: []string{"old"}, newRoots: []string{"new"}}
	for _, tc := range []struct {
		name   string
		c      transitionCheck
		at     time.Duration
		roots  pki.ProxyRoots
		ending bool
	}{
		{"proxies without the new root keep it open", open, time.Minute, untrusting(2), false},
		{"every proxy trusts the new root", open, time.Minute, untrusting(0), true},
		{"unknown proxy roots keep it open", open, time.Minute, nil, false},
		{"the maximum window ends it", open, time.Hour, untrusting(2), true},
		{"a new root that was trusted already", transitionCheck{open: true, since: since, oldRoots: []string{"a", "b"}, newRoots: []string{"b"}}, 0, nil, true},
		{"the old CA failed", transitionCheck{open: true, since: since, failed: true, oldRoots: []string{"a"}, newRoots: []string{"b"}}, 0, untrusting(1), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := transitionEnd(tc.c, since.Add(tc.at), time.Hour, tc.roots)
			if (got != "") != tc.ending {
				t.Errorf("transitionEnd = %q, want ending %v", got, tc.ending)
			}
		})
	}
}
