package certificates

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/capstanmesh/capstan/internal/meshmetrics"
	"github.com/capstanmesh/capstan/pki"
)

// issueJob is one issuance: what to issue, with which provider, under which config.
type issueJob struct {
	st       *certState
	provider pki.Provider
	epoch    int
	cfg      certConfig
}

type issueResult struct {
	cred    *pki.Credential
	tlsCert *tls.Certificate
	bundle  []byte
	err     error
}

// issue makes a key, has the provider sign it and checks the result. It
// reads only the job's immutable fields.
func (m *Manager) issue(ctx context.Context, job issueJob) issueResult {
	ctx, cancel := context.WithTimeout(ctx, m.opts.IssueTimeout)
	defer cancel()
	if err := job.provider.Ready(ctx); err != nil {
		return issueResult{err: err}
	}
	key, req, err := m.newRequest(job)
	if err != nil {
		return issueResult{err: err}
	}
	issuedAt := time.Now()
	cert, err := job.provider.Sign(ctx, req)
	if err != nil {
		return issueResult{err: err}
	}
	bundle, err := job.provider.TrustBundle(ctx)
	if err != nil {
		return issueResult{err: fmt.Errorf("trust bundle: %w", err)}
	}
	cred := &pki.Credential{
		Key: key, Cert: cert, BundlePEM: bundle,
		// Renewal is scheduled from issuance: a backdated NotBefore (clock
		// skew) must not pull it earlier.
		RenewAt: pki.RenewAt(later(cert.NotBefore, issuedAt), cert.NotAfter, job.cfg.fraction, rand.Float64),
	}
	if job.st.dnsNames != nil {
		tc, err := key.TLSCertificate(cert.ChainPEM)
		if err != nil {
			return issueResult{err: fmt.Errorf("serving certificate: %w", err)}
		}
		return issueResult{cred: cred, tlsCert: &tc, bundle: bundle}
	}
	cred.Identity = job.st.id.String()
	if err := pki.VerifyWorkloadCert(cert.ChainPEM, bundle, cred.Identity, time.Now()); err != nil {
		return issueResult{err: fmt.Errorf("the issued certificate does not verify: %w", err)}
	}
	return issueResult{cred: cred, bundle: bundle}
}

func (m *Manager) newRequest(job issueJob) (*pki.Key, pki.CertificateRequest, error) {
	if job.st.dnsNames != nil {
		key, csr, err := pki.NewServingKeyAndCSR(job.st.dnsNames)
		return key, pki.CertificateRequest{CSR: csr, DNSNames: job.st.dnsNames, TTL: m.opts.ServingTTL}, err
	}
	ttl := job.cfg.ttl
	if m.opts.MaxWorkloadTTL > 0 {
		ttl = min(ttl, m.opts.MaxWorkloadTTL)
	}
	key, csr, err := pki.NewKeyAndCSR(job.st.id)
	return key, pki.CertificateRequest{CSR: csr, Identity: job.st.id, TTL: ttl}, err
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// finish records an issuance's outcome, updates the trust bundle and tells
// the subscribers which identities changed.
func (m *Manager) finish(job issueJob, res issueResult) {
	m.mu.Lock()
	st := job.st
	st.inflight = false
	m.inflight--
	var changed []string
	switch {
	case res.err != nil:
		st.failures++
		st.retryAt = time.Now().Add(retryDelay(st.failures))
		m.setIssuerLocked(issuerStateOf(res.err))
		if st == m.serving && m.transition != nil && job.provider != m.provider {
			m.transition.oldFailed = true
		}
		m.log.Error(res.err, "issuing a certificate failed; proxies keep their current one", "identity", st.id.String(), "dnsNames", st.dnsNames, "retryIn", retryDelay(st.failures))
	case job.epoch != m.epochOf(st):
		// The provider changed while this one was issued: discard it.
	default:
		st.failures, st.retryAt = 0, time.Time{}
		st.cred, st.epoch = res.cred, job.epoch
		if st.dnsNames != nil {
			st.tlsCert = res.tlsCert
			m.markServingReadyLocked()
		} else if m.workloads[st.id.String()] == st {
			changed = append(changed, st.id.String())
			meshmetrics.SetCertificateExpiry(st.id.String(), res.cred.Cert.NotAfter)
		}
		if job.provider == m.provider {
			changed = append(changed, m.refreshBundleLocked(res.bundle)...)
		}
		if st.dnsNames == nil && !bytes.Equal(st.cred.BundlePEM, m.bundle) {
			// Peers of this proxy may still present certificates of the
			// previous CA: it trusts the whole bundle, not only its issuer.
			c := *st.cred
			c.BundlePEM = m.bundle
			st.cred = &c
		}
		m.setIssuerLocked(issuerState{known: true, ok: true})
	}
	subs := m.subscribers
	m.mu.Unlock()
	notify(subs, changed)
	m.signal()
}

func notify(subs []func(string), identities []string) {
	seen := map[string]bool{}
	for _, id := range identities {
		if seen[id] {
			continue
		}
		seen[id] = true
		for _, f := range subs {
			f(id)
		}
	}
}

func (m *Manager) markServingReadyLocked() {
	select {
	case <-m.servingReady:
	default:
		close(m.servingReady)
	}
}

// refreshBundleLocked sets the provider's bundle (when not nil) and
// recomputes the bundle proxies get: the provider's, plus the previous
// provider's while a certificate of it is still in use. When it changed,
// every credential gets it and their identities are returned. m.mu is held.
func (m *Manager) refreshBundleLocked(providerBundle []byte) []string {
	if providerBundle != nil {
		m.providerBundle = bytes.Clone(providerBundle)
	}
	stale := m.serving != nil && m.serving.cred != nil && m.serving.epoch != m.epoch
	for _, st := range m.workloads {
		stale = stale || (st.cred != nil && st.epoch != m.epoch)
	}
	b := m.providerBundle
	if stale && len(m.prevBundle) > 0 {
		merged, err := pki.MergeBundles(time.Now(), m.providerBundle, m.prevBundle)
		if err == nil {
			b = merged
		}
	} else if !stale {
		m.prevBundle = nil
	}
	if bytes.Equal(b, m.bundle) {
		return nil
	}
	m.bundle = b
	var changed []string
	for id, st := range m.workloads {
		if st.cred != nil {
			c := *st.cred
			c.BundlePEM = b
			st.cred = &c
			changed = append(changed, id)
		}
	}
	return changed
}
