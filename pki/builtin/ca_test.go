package builtin

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/capstanmesh/capstan/pki"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

var web = pki.Identity{TrustDomain: "cluster.local", Namespace: "shop", ServiceAccount: "web"}

func newCA(t *testing.T, store RootStore, c *clock) *CA {
	t.Helper()
	ca, err := New(t.Context(), store, Options{TrustDomain: "cluster.local", Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// issue signs a workload certificate for id.
func issue(t *testing.T, ca *CA, id pki.Identity, ttl time.Duration) (*pki.Key, *pki.Certificate) {
	t.Helper()
	key, csr, err := pki.NewKeyAndCSR(id)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Sign(t.Context(), pki.CertificateRequest{CSR: csr, Identity: id, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

func bundle(t *testing.T, ca *CA) []byte {
	t.Helper()
	b, err := ca.TrustBundle(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRootCreatedOnceAndReused(t *testing.T) {
	c := newClock()
	store := &MemoryStore{}
	ca1 := newCA(t, store, c)
	if store.Saves() != 1 {
		t.Fatalf("saves = %d, want 1", store.Saves())
	}
	root := ca1.ActiveRoot()
	if !root.IsCA || !root.BasicConstraintsValid || root.MaxPathLen != 0 || !root.MaxPathLenZero {
		t.Errorf("root constraints: IsCA %v maxPathLen %d zero %v", root.IsCA, root.MaxPathLen, root.MaxPathLenZero)
	}
	if root.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("root key usage %v", root.KeyUsage)
	}
	if len(root.SubjectKeyId) == 0 || root.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("root SKI %x algorithm %v", root.SubjectKeyId, root.PublicKeyAlgorithm)
	}
	if got := root.NotAfter.Sub(c.Now()); got != DefaultRootTTL {
		t.Errorf("root lifetime %v, want %v", got, DefaultRootTTL)
	}
	if err := root.CheckSignatureFrom(root); err != nil {
		t.Errorf("root is not self-signed: %v", err)
	}
	if err := ca1.Ready(t.Context()); err != nil {
		t.Errorf("Ready: %v", err)
	}
	_, cert := issue(t, ca1, web, time.Hour)

	// "Restart": a new CA on the same store reuses the root and does not save.
	ca2 := newCA(t, store, c)
	if !ca2.ActiveRoot().Equal(root) {
		t.Fatal("restart made a new root")
	}
	if store.Saves() != 1 {
		t.Errorf("saves = %d after restart, want 1", store.Saves())
	}
	if err := pki.VerifyWorkloadCert(cert.ChainPEM, bundle(t, ca2), web.String(), c.Now()); err != nil {
		t.Errorf("certificate from before the restart: %v", err)
	}
	_, cert2 := issue(t, ca2, web, time.Hour)
	if err := pki.VerifyWorkloadCert(cert2.ChainPEM, bundle(t, ca1), web.String(), c.Now()); err != nil {
		t.Errorf("certificate from after the restart: %v", err)
	}
}

func TestStoreFailuresDoNotReplaceRoot(t *testing.T) {
	c := newClock()
	if _, err := New(t.Context(), &MemoryStore{LoadErr: errors.New("apiserver down")}, Options{Now: c.Now}); err == nil {
		t.Error("New with a failing Load succeeded")
	}
	if _, err := New(t.Context(), &MemoryStore{SaveErr: errors.New("forbidden")}, Options{Now: c.Now}); err == nil {
		t.Error("New with a failing Save and nothing stored succeeded")
	}
	store := &MemoryStore{}
	newCA(t, store, c)
	cert, key, _, _ := store.Load(t.Context())
	for name, st := range map[string][2][]byte{
		"garbage cert": {[]byte("garbage"), key},
		"garbage key":  {cert, []byte("garbage")},
		"swapped":      {key, cert},
	} {
		bad := &MemoryStore{}
		if err := bad.Save(t.Context(), st[0], st[1]); err != nil {
			t.Fatal(err)
		}
		if _, err := New(t.Context(), bad, Options{Now: c.Now}); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
		if bad.Saves() != 1 {
			t.Errorf("%s: New overwrote the stored state", name)
		}
	}
	// A key that belongs to another root.
	other := &MemoryStore{}
	newCA(t, other, c)
	_, otherKey, _, _ := other.Load(t.Context())
	bad := &MemoryStore{}
	_ = bad.Save(t.Context(), cert, otherKey)
	if _, err := New(t.Context(), bad, Options{Now: c.Now}); err == nil {
		t.Error("mismatched key accepted")
	}
}

// racingStore loses the creation race: its Save fails, but by then another
// replica has stored a root.
type racingStore struct {
	MemoryStore
	winner *MemoryStore
	loads  int
}

func (r *racingStore) Load(ctx context.Context) ([]byte, []byte, bool, error) {
	r.loads++
	if r.loads == 1 {
		return nil, nil, false, nil
	}
	return r.winner.Load(ctx)
}

func (r *racingStore) Save(context.Context, []byte, []byte) error {
	return errors.New("already exists")
}

func TestLostCreationRaceUsesWinnersRoot(t *testing.T) {
	c := newClock()
	winner := &MemoryStore{}
	w := newCA(t, winner, c)
	ca, err := New(t.Context(), &racingStore{winner: winner}, Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if !ca.ActiveRoot().Equal(w.ActiveRoot()) {
		t.Error("loser did not adopt the winner's root")
	}
}

func TestExpiredRootReplaced(t *testing.T) {
	c := newClock()
	store := &MemoryStore{}
	ca, err := New(t.Context(), store, Options{Now: c.Now, RootTTL: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	old := ca.ActiveRoot()
	c.Add(72 * time.Hour)
	if err := ca.Ready(t.Context()); err == nil {
		t.Error("Ready with an expired root")
	}
	if _, err := ca.TrustBundle(t.Context()); err == nil {
		t.Error("TrustBundle with only an expired root")
	}
	ca2, err := New(t.Context(), store, Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if ca2.ActiveRoot().Equal(old) || len(ca2.Roots()) != 1 {
		t.Error("expired root not replaced")
	}
	if err := ca2.Ready(t.Context()); err != nil {
		t.Error(err)
	}
}

func TestWorkloadCertificate(t *testing.T) {
	c := newClock()
	ca := newCA(t, &MemoryStore{}, c)
	key, cert := issue(t, ca, web, 24*time.Hour)
	b := bundle(t, ca)
	now := c.Now()
	if err := pki.VerifyWorkloadCert(cert.ChainPEM, b, web.String(), now); err != nil {
		t.Fatalf("verify: %v", err)
	}
	certs, err := pki.ParseCertificatesPEM(cert.ChainPEM)
	if err != nil || len(certs) != 1 {
		t.Fatalf("chain: %d certs, %v", len(certs), err)
	}
	leaf := certs[0]
	if !leaf.NotBefore.Equal(now.Add(-time.Minute)) || !leaf.NotAfter.Equal(now.Add(24*time.Hour)) {
		t.Errorf("validity %v..%v, want %v..%v", leaf.NotBefore, leaf.NotAfter, now.Add(-time.Minute), now.Add(24*time.Hour))
	}
	if !cert.NotBefore.Equal(leaf.NotBefore) || !cert.NotAfter.Equal(leaf.NotAfter) {
		t.Error("Certificate times differ from the leaf's")
	}
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://cluster.local/ns/shop/sa/web" {
		t.Errorf("URIs %v", leaf.URIs)
	}
	if leaf.Subject.String() != "" || len(leaf.DNSNames) != 0 || leaf.IsCA {
		t.Errorf("subject %q DNS %v IsCA %v", leaf.Subject, leaf.DNSNames, leaf.IsCA)
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("key usage %v", leaf.KeyUsage)
	}
	sanCritical := false
	for _, e := range leaf.Extensions {
		if e.Id.String() == "2.5.29.17" {
			sanCritical = e.Critical
		}
	}
	if !sanCritical {
		t.Error("SAN extension not critical with an empty subject")
	}
	if !bytes.Equal(leaf.AuthorityKeyId, ca.ActiveRoot().SubjectKeyId) {
		t.Error("AKI does not name the root")
	}
	if _, err := key.TLSCertificate(cert.ChainPEM); err != nil {
		t.Errorf("key does not pair with the certificate: %v", err)
	}
	other, _ := pki.NewKey()
	if _, err := other.TLSCertificate(cert.ChainPEM); err == nil {
		t.Error("another key pairs with the certificate")
	}

	// Verification failures.
	other2 := pki.Identity{TrustDomain: "cluster.local", Namespace: "shop", ServiceAccount: "admin"}
	if err := pki.VerifyWorkloadCert(cert.ChainPEM, b, other2.String(), now); err == nil {
		t.Error("verified as the wrong identity")
	}
	if err := pki.VerifyWorkloadCert(cert.ChainPEM, b, web.String(), now.Add(25*time.Hour)); err == nil {
		t.Error("verified after expiry")
	}
	if err := pki.VerifyWorkloadCert(cert.ChainPEM, b, web.String(), now.Add(-2*time.Minute)); err == nil {
		t.Error("verified before NotBefore")
	}
	foreign := newCA(t, &MemoryStore{}, c)
	_, fcert := issue(t, foreign, web, time.Hour)
	if err := pki.VerifyWorkloadCert(fcert.ChainPEM, b, web.String(), now); err == nil {
		t.Error("a certificate from another CA verified")
	}
	if err := pki.VerifyWorkloadCert(cert.ChainPEM, bundle(t, foreign), web.String(), now); err == nil {
		t.Error("verified against another CA's bundle")
	}
	// A serving certificate is not a workload certificate.
	_, scert, err := ca.ServingCert(t.Context(), []string{"xds"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.VerifyWorkloadCert(scert.ChainPEM, b, "xds", now); err == nil {
		t.Error("serving certificate verified as a workload certificate")
	}
}

func TestSignLimits(t *testing.T) {
	c := newClock()
	ca, err := New(t.Context(), &MemoryStore{}, Options{TrustDomain: "cluster.local", Now: c.Now, RootTTL: 100 * time.Hour, MaxTTL: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	_, cert := issue(t, ca, web, 72*time.Hour)
	if got := cert.NotAfter.Sub(c.Now()); got != 48*time.Hour {
		t.Errorf("lifetime %v, want capped at MaxTTL 48h", got)
	}
	c.Add(90 * time.Hour)
	_, cert = issue(t, ca, web, 24*time.Hour)
	if !cert.NotAfter.Equal(ca.ActiveRoot().NotAfter) {
		t.Errorf("NotAfter %v outlives the root %v", cert.NotAfter, ca.ActiveRoot().NotAfter)
	}

	foreignTD := pki.Identity{TrustDomain: "example.org", Namespace: "shop", ServiceAccount: "web"}
	_, csr, _ := pki.NewKeyAndCSR(foreignTD)
	if _, err := ca.Sign(t.Context(), pki.CertificateRequest{CSR: csr, Identity: foreignTD, TTL: time.Hour}); err == nil {
		t.Error("signed for another trust domain")
	}
	_, csr, _ = pki.NewKeyAndCSR(web)
	admin := pki.Identity{TrustDomain: "cluster.local", Namespace: "shop", ServiceAccount: "admin"}
	if _, err := ca.Sign(t.Context(), pki.CertificateRequest{CSR: csr, Identity: admin, TTL: time.Hour}); err == nil {
		t.Error("signed a CSR for web as admin")
	}
}

func TestRotationOverlap(t *testing.T) {
	c := newClock()
	store := &MemoryStore{}
	ca := newCA(t, store, c)
	oldRoot := ca.ActiveRoot()
	_, oldCert := issue(t, ca, web, 24*time.Hour)

	// Stage: the next root is trusted, but the old one still signs.
	if err := ca.StageRotation(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := ca.StageRotation(t.Context()); err != nil { // idempotent
		t.Fatal(err)
	}
	roots := ca.Roots()
	if len(roots) != 2 || !roots[0].Equal(oldRoot) {
		t.Fatalf("after staging: %d roots", len(roots))
	}
	next := roots[1]
	if got, _ := pki.ParseCertificatesPEM(bundle(t, ca)); len(got) != 2 {
		t.Fatalf("staged bundle has %d roots, want 2", len(got))
	}
	_, stagedCert := issue(t, ca, web, 24*time.Hour)
	if !bytes.Equal(leaf(t, stagedCert).AuthorityKeyId, oldRoot.SubjectKeyId) {
		t.Error("staged root signs before Rotate")
	}

	// A restart keeps the staged root (and its key).
	ca = newCA(t, store, c)
	if r := ca.Roots(); len(r) != 2 || !r[1].Equal(next) {
		t.Fatal("staged root lost on restart")
	}

	// Rotate: the staged root signs, the old one stays trusted.
	if err := ca.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !ca.ActiveRoot().Equal(next) {
		t.Fatal("Rotate did not promote the staged root")
	}
	_, newCert := issue(t, ca, web, 24*time.Hour)
	if !bytes.Equal(leaf(t, newCert).AuthorityKeyId, next.SubjectKeyId) {
		t.Error("new certificate not signed by the new root")
	}
	c.Add(time.Hour)
	b := bundle(t, ca)
	for name, cert := range map[string]*pki.Certificate{"old": oldCert, "staged": stagedCert, "new": newCert} {
		if err := pki.VerifyWorkloadCert(cert.ChainPEM, b, web.String(), c.Now()); err != nil {
			t.Errorf("%s certificate during the overlap: %v", name, err)
		}
	}

	// A restart keeps the previous root trusted.
	ca = newCA(t, store, c)
	if r := ca.Roots(); len(r) != 2 || !r[0].Equal(next) || !r[1].Equal(oldRoot) {
		t.Fatal("previous root lost on restart")
	}
	if err := pki.VerifyWorkloadCert(oldCert.ChainPEM, bundle(t, ca), web.String(), c.Now()); err != nil {
		t.Errorf("old certificate after restart: %v", err)
	}

	// Retire: the old root's certificates no longer verify.
	if err := ca.RetirePrevious(t.Context()); err != nil {
		t.Fatal(err)
	}
	b = bundle(t, ca)
	if err := pki.VerifyWorkloadCert(oldCert.ChainPEM, b, web.String(), c.Now()); err == nil {
		t.Error("old certificate verifies after RetirePrevious")
	}
	if err := pki.VerifyWorkloadCert(newCert.ChainPEM, b, web.String(), c.Now()); err != nil {
		t.Errorf("new certificate after RetirePrevious: %v", err)
	}
	if r := newCA(t, store, c).Roots(); len(r) != 1 {
		t.Errorf("%d roots stored after RetirePrevious", len(r))
	}
}

func TestRotateWithoutStagingAndExpiry(t *testing.T) {
	c := newClock()
	ca, err := New(t.Context(), &MemoryStore{}, Options{Now: c.Now, RootTTL: 100 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	first := ca.ActiveRoot()
	_, oldCert := issue(t, ca, web, 10*time.Hour)
	c.Add(50 * time.Hour)
	if err := ca.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if ca.ActiveRoot().Equal(first) || len(ca.Roots()) != 2 {
		t.Fatal("Rotate without staging did not make a new active root")
	}
	_, newCert := issue(t, ca, web, 10*time.Hour)
	if err := pki.VerifyWorkloadCert(newCert.ChainPEM, bundle(t, ca), web.String(), c.Now()); err != nil {
		t.Error(err)
	}
	if err := pki.VerifyWorkloadCert(oldCert.ChainPEM, bundle(t, ca), web.String(), c.Now().Add(-45*time.Hour)); err != nil {
		t.Error(err)
	}
	// Once the previous root expires it leaves the bundle, and the next
	// Rotate drops it from the state.
	c.Add(60 * time.Hour)
	if got, _ := pki.ParseCertificatesPEM(bundle(t, ca)); len(got) != 1 || !got[0].Equal(ca.ActiveRoot()) {
		t.Errorf("bundle has %d roots after the previous root expired", len(got))
	}
	if err := ca.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(ca.Roots()); n != 2 {
		t.Errorf("%d roots after the second Rotate, want 2 (the expired one dropped)", n)
	}
}

func TestRotateSaveFailureKeepsState(t *testing.T) {
	c := newClock()
	store := &MemoryStore{}
	ca := newCA(t, store, c)
	root := ca.ActiveRoot()
	store.SaveErr = errors.New("conflict")
	if err := ca.Rotate(t.Context()); err == nil {
		t.Fatal("Rotate succeeded though Save failed")
	}
	if err := ca.StageRotation(t.Context()); err == nil {
		t.Fatal("StageRotation succeeded though Save failed")
	}
	if !ca.ActiveRoot().Equal(root) || len(ca.Roots()) != 1 {
		t.Error("failed save changed the CA")
	}
}

func TestServingCertTLS(t *testing.T) {
	ca, err := New(t.Context(), &MemoryStore{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"capstan-xds.capstan-system.svc", "capstan-xds.capstan-system.svc.cluster.local"}
	key, cert, err := ca.ServingCert(t.Context(), names, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	l := leaf(t, cert)
	if l.Subject.CommonName != names[0] || len(l.DNSNames) != 2 || len(l.URIs) != 0 {
		t.Errorf("CN %q DNS %v URIs %v", l.Subject.CommonName, l.DNSNames, l.URIs)
	}
	if len(l.ExtKeyUsage) != 1 || l.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("ext key usage %v", l.ExtKeyUsage)
	}
	tc, err := key.TLSCertificate(cert.ChainPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(bundle(t, ca)) {
		t.Fatal("bundle not PEM")
	}
	cc, sc := net.Pipe()
	t.Cleanup(func() { _, _ = cc.Close(), sc.Close() })
	errc := make(chan error, 1)
	go func() {
		errc <- tls.Server(sc, &tls.Config{Certificates: []tls.Certificate{tc}}).Handshake()
	}()
	if err := tls.Client(cc, &tls.Config{RootCAs: pool, ServerName: names[1]}).Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
}

// TestMutualTLSWithWorkloadCerts: two workload certificates authenticate
// each other over real TLS 1.3 against the bundle.
func TestMutualTLSWithWorkloadCerts(t *testing.T) {
	ca, err := New(t.Context(), &MemoryStore{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(bundle(t, ca))
	pair := func(id pki.Identity) tls.Certificate {
		k, c := issue(t, ca, id, time.Hour)
		tc, err := k.TLSCertificate(c.ChainPEM)
		if err != nil {
			t.Fatal(err)
		}
		return tc
	}
	db := pki.Identity{TrustDomain: "cluster.local", Namespace: "shop", ServiceAccount: "db"}
	peerID := func(want pki.Identity) func(tls.ConnectionState) error {
		return func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || len(cs.PeerCertificates[0].URIs) != 1 || cs.PeerCertificates[0].URIs[0].String() != want.String() {
				return errors.New("wrong peer identity")
			}
			return nil
		}
	}
	cc, sc := net.Pipe()
	t.Cleanup(func() { _, _ = cc.Close(), sc.Close() })
	errc := make(chan error, 1)
	go func() {
		errc <- tls.Server(sc, &tls.Config{
			Certificates: []tls.Certificate{pair(db)}, ClientCAs: pool,
			ClientAuth: tls.RequireAndVerifyClientCert, VerifyConnection: peerID(web), MinVersion: tls.VersionTLS13,
		}).Handshake()
	}()
	// SPIFFE peers have no DNS name: skip hostname checks and verify the URI.
	err = tls.Client(cc, &tls.Config{
		Certificates: []tls.Certificate{pair(web)}, InsecureSkipVerify: true, MinVersion: tls.VersionTLS13,
		VerifyConnection: func(cs tls.ConnectionState) error {
			opts := x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
			if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
				return err
			}
			return peerID(db)(cs)
		},
	}).Handshake()
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server: %v", err)
	}
}

func TestConcurrentSignAndRotate(t *testing.T) {
	ca, err := New(t.Context(), &MemoryStore{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 5 {
				_, cert := issue(t, ca, web, time.Hour)
				b := bundle(t, ca)
				// Previous roots stay trusted, so a bundle read after
				// issuance always holds the issuer.
				if err := pki.VerifyWorkloadCert(cert.ChainPEM, b, web.String(), time.Now()); err != nil {
					t.Error(err)
				}
				if i == 0 {
					if err := ca.Rotate(context.Background()); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
}

func leaf(t *testing.T, c *pki.Certificate) *x509.Certificate {
	t.Helper()
	certs, err := pki.ParseCertificatesPEM(c.ChainPEM)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}
