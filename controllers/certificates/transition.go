package certificates

import (
	"time"

	"github.com/capstanmesh/capstan/pki"
)

// Defaults of the trust transition (Options).
const (
	DefaultMaxTrustTransition = 24 * time.Hour
	defaultTransitionPoll     = 5 * time.Second
)

// trustTransition is the overlap window after the Mesh's CA changed: the
// xDS serving certificate still comes from the previous provider (whose
// root every running proxy has), while workload certificates come from
// the new one and the published bundle holds both roots.
type trustTransition struct {
	since time.Time
	// oldRoots are the fingerprints of the bundle when the CA changed.
	oldRoots []string
	// oldFailed is set when the previous provider failed to renew the
	// serving certificate: it cannot serve the window any longer.
	oldFailed bool
}

// transitionCheck is what deciding the end of a window needs, copied
// under m.mu so that pki.ProxyRoots is asked without holding it.
type transitionCheck struct {
	open     bool
	epoch    int
	since    time.Time
	oldRoots []string
	newRoots []string
	failed   bool
}

// SetProxyRoots tells the manager how to learn the connected proxies'
// roots. Without it a CA change keeps the old serving certificate for the
// whole MaxTrustTransition, unless the new roots were trusted already.
func (m *Manager) SetProxyRoots(r pki.ProxyRoots) {
	m.mu.Lock()
	m.proxyRoots = r
	m.mu.Unlock()
	m.signal()
}

// InTrustTransition reports whether the xDS serving certificate still comes
// from the previous CA, and since when.
func (m *Manager) InTrustTransition() (bool, time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.transition == nil {
		return false, time.Time{}
	}
	return true, m.transition.since
}

// beginTransitionLocked is called when a new provider is installed: the
// first provider also serves at once, later ones only after a window.
// m.mu is held.
func (m *Manager) beginTransitionLocked(now time.Time) {
	if m.servingProvider == nil || m.serving == nil || m.serving.cred == nil {
		m.servingProvider, m.servingEpoch, m.transition = m.provider, m.epoch, nil
		return
	}
	if m.transition != nil {
		return // a CA change during a window: the window goes on, towards the newest CA
	}
	old, err := pki.RootFingerprints(m.bundle)
	if err != nil {
		old = nil
	}
	m.transition = &trustTransition{since: now, oldRoots: old}
	m.log.Info("CA changed: serving xDS from the previous CA until every connected proxy trusts the new root",
		"maxWindow", m.opts.MaxTrustTransition)
}

// checkTransition ends the window when nobody can be stranded any more, or
// when it cannot or may not last longer; it reports whether it is still open.
func (m *Manager) checkTransition(now time.Time) bool {
	m.mu.Lock()
	c := m.transitionStateLocked()
	roots := m.proxyRoots
	m.mu.Unlock()
	if !c.open {
		return false
	}
	reason := transitionEnd(c, now, m.opts.MaxTrustTransition, roots)
	if reason == "" {
		return true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.transition == nil || m.epoch != c.epoch {
		return m.transition != nil // changed meanwhile; the next round decides
	}
	m.log.Info("switching the xDS serving certificate to the new CA", "reason", reason, "window", now.Sub(c.since).Round(time.Millisecond))
	m.servingProvider, m.servingEpoch, m.transition = m.provider, m.epoch, nil
	return false
}

func (m *Manager) transitionStateLocked() transitionCheck {
	if m.transition == nil || m.provider == nil {
		return transitionCheck{}
	}
	c := transitionCheck{
		open: true, epoch: m.epoch, since: m.transition.since,
		oldRoots: m.transition.oldRoots, failed: m.transition.oldFailed,
	}
	if len(m.providerBundle) > 0 {
		if fps, err := pki.RootFingerprints(m.providerBundle); err == nil {
			c.newRoots = fps
		}
	}
	return c
}

// transitionEnd says why a window may end now, or "" while it must go on.
func transitionEnd(c transitionCheck, now time.Time, maxWindow time.Duration, roots pki.ProxyRoots) string {
	switch {
	case c.failed:
		return "the previous CA failed to renew the serving certificate"
	case !now.Before(c.since.Add(maxWindow)):
		return "the maximum window elapsed"
	case c.newRoots != nil && pki.CoversFingerprints(c.oldRoots, c.newRoots):
		return "the new CA's roots were trusted already"
	case roots == nil:
		return ""
	case roots.Untrusting(c.newRoots) == 0:
		return "every connected proxy trusts the new roots"
	}
	return ""
}
