// Package builtin is Capstan's built-in certificate authority, the
// pki.Provider used when Mesh.spec.certificates.provider is BuiltIn: a
// self-signed ECDSA P-256 root, kept in a RootStore (a Secret in the
// operator's namespace), created on first start and reused after, signing
// workload and serving certificates directly (no intermediate).
//
// Root rotation keeps the old root trusted during an overlap (see
// docs/security.md): StageRotation adds a next root to the trust bundle
// without signing with it, Rotate makes it the signing root and keeps the
// old one trusted, RetirePrevious drops the old roots from the bundle.
package builtin

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"time"

	"github.com/capstanmesh/capstan/pki"
)

// Defaults of Options.
const (
	DefaultRootTTL = 10 * 365 * 24 * time.Hour
	DefaultMaxTTL  = 720 * time.Hour
	// ClockSkew is how far back NotBefore is set from the signing time.
	ClockSkew = time.Minute
)

// Options configure a CA. The zero value is usable.
type Options struct {
	// TrustDomain, if set, is the only trust domain Sign issues workload
	// certificates for.
	TrustDomain string
	// RootTTL is the lifetime of a new root (DefaultRootTTL if zero).
	RootTTL time.Duration
	// MaxTTL caps the lifetime of issued certificates (DefaultMaxTTL if
	// zero). Certificates never outlive the root that signs them either.
	MaxTTL time.Duration
	// Now is the clock (time.Now if nil).
	Now func() time.Time
}

// root is a root certificate and, for the active and next roots, its key.
type root struct {
	cert *x509.Certificate
	key  *pki.Key
}

// CA is the built-in certificate authority. It implements pki.Provider and
// is safe for concurrent use. The CA's in-memory state is authoritative:
// with several operator replicas, only the leader should run one.
type CA struct {
	store RootStore
	opts  Options

	// mu guards the roots; mutations hold it across the Save so that the
	// store and memory change together, in order.
	mu sync.RWMutex
	state
}

// state is the set of roots.
type state struct {
	active   root
	next     *root
	previous []*x509.Certificate
}

var _ pki.Provider = (*CA)(nil)

// New loads the roots from store, or creates a root and saves it if the
// store has none. If the stored state cannot be read or parsed, New fails
// rather than replace it. If the stored active root has expired (the mesh is
// broken anyway), New replaces it with a new root and saves. If saving a new
// root fails but the store now holds one (another replica won the race), New
// uses that.
func New(ctx context.Context, store RootStore, opts Options) (*CA, error) {
	if opts.RootTTL <= 0 {
		opts.RootTTL = DefaultRootTTL
	}
	if opts.MaxTTL <= 0 {
		opts.MaxTTL = DefaultMaxTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TrustDomain != "" {
		if err := pki.ValidateTrustDomain(opts.TrustDomain); err != nil {
			return nil, err
		}
	}
	ca := &CA{store: store, opts: opts}
	certPEM, keyPEM, found, err := store.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("load root: %w", err)
	}
	if found {
		if err := ca.parseState(certPEM, keyPEM); err != nil {
			return nil, fmt.Errorf("stored root: %w", err)
		}
		if opts.Now().Before(ca.active.cert.NotAfter) {
			return ca, nil
		}
	}
	// No root yet, or the active one expired: make one.
	r, err := ca.newRoot()
	if err != nil {
		return nil, err
	}
	st := &state{active: r}
	if err := ca.saveState(ctx, st); err != nil {
		if found {
			return nil, fmt.Errorf("save replacement for expired root: %w", err)
		}
		certPEM, keyPEM, found, lerr := store.Load(ctx)
		if lerr != nil || !found {
			return nil, fmt.Errorf("save new root: %w", err)
		}
		if err := ca.parseState(certPEM, keyPEM); err != nil {
			return nil, fmt.Errorf("stored root: %w", err)
		}
		return ca, nil
	}
	ca.state = *st
	return ca, nil
}

// Sign implements pki.Provider. Workload certificates (req.Identity) have an
// empty subject, the SPIFFE ID as their only SAN (URI) and extended key
// usages server and client auth; serving certificates (req.DNSNames) have
// the DNS names, the first as CN, and server auth only. Both are valid from
// one minute before now (clock skew) to now+TTL, capped by MaxTTL and by the
// root's expiry.
func (ca *CA) Sign(ctx context.Context, req pki.CertificateRequest) (*pki.Certificate, error) {
	csr, err := req.Check()
	if err != nil {
		return nil, fmt.Errorf("certificate request: %w", err)
	}
	if td := ca.opts.TrustDomain; td != "" && !req.Identity.IsZero() && req.Identity.TrustDomain != td {
		return nil, fmt.Errorf("trust domain %q, this CA signs only %q", req.Identity.TrustDomain, td)
	}
	ca.mu.RLock()
	issuer := ca.active
	ca.mu.RUnlock()

	now := ca.opts.Now()
	notAfter := now.Add(min(req.TTL, ca.opts.MaxTTL))
	if notAfter.After(issuer.cert.NotAfter) {
		notAfter = issuer.cert.NotAfter
	}
	if !notAfter.After(now) {
		return nil, errors.New("the root has expired")
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		NotBefore:             now.Add(-ClockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	if !req.Identity.IsZero() {
		tmpl.URIs = csr.URIs
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	} else {
		tmpl.DNSNames = slices.Clone(req.DNSNames)
		tmpl.Subject.CommonName = req.DNSNames[0]
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer.cert, csr.PublicKey, issuer.key.Signer())
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &pki.Certificate{
		ChainPEM:  pki.EncodeCertificatesPEM(leaf),
		NotBefore: leaf.NotBefore,
		NotAfter:  leaf.NotAfter,
	}, nil
}

// ServingCert generates a key and signs a serving certificate for dnsNames,
// e.g. the xDS Service's names, valid for ttl. Use key.TLSCertificate(
// cert.ChainPEM) in the server's tls.Config.
func (ca *CA) ServingCert(ctx context.Context, dnsNames []string, ttl time.Duration) (*pki.Key, *pki.Certificate, error) {
	key, csr, err := pki.NewServingKeyAndCSR(dnsNames)
	if err != nil {
		return nil, nil, err
	}
	cert, err := ca.Sign(ctx, pki.CertificateRequest{CSR: csr, DNSNames: dnsNames, TTL: ttl})
	if err != nil {
		return nil, nil, err
	}
	return key, cert, nil
}

// TrustBundle implements pki.Provider: the PEM of every trusted root that
// has not expired, the active root first, then the staged next root, then
// previous roots.
func (ca *CA) TrustBundle(context.Context) ([]byte, error) {
	now := ca.opts.Now()
	var live []*x509.Certificate
	for _, c := range ca.Roots() {
		if now.Before(c.NotAfter) {
			live = append(live, c)
		}
	}
	if len(live) == 0 {
		return nil, errors.New("no unexpired root")
	}
	return pki.EncodeCertificatesPEM(live...), nil
}

// Ready implements pki.Provider: nil while the active root has not expired.
func (ca *CA) Ready(context.Context) error {
	ca.mu.RLock()
	defer ca.mu.RUnlock()
	if !ca.opts.Now().Before(ca.active.cert.NotAfter) {
		return fmt.Errorf("root %s expired at %v", ca.active.cert.Subject.CommonName, ca.active.cert.NotAfter)
	}
	return nil
}

// ActiveRoot is the root that signs.
func (ca *CA) ActiveRoot() *x509.Certificate {
	ca.mu.RLock()
	defer ca.mu.RUnlock()
	return ca.active.cert
}

// Roots are all roots the CA holds, expired or not, in bundle order: active,
// next (if staged), previous.
func (ca *CA) Roots() []*x509.Certificate {
	ca.mu.RLock()
	defer ca.mu.RUnlock()
	out := []*x509.Certificate{ca.active.cert}
	if ca.next != nil {
		out = append(out, ca.next.cert)
	}
	return append(out, ca.previous...)
}

// StageRotation creates the next root and adds it to the trust bundle
// without signing with it, so proxies learn to trust it before any
// certificate chains to it. It does nothing if a next root is already
// staged.
func (ca *CA) StageRotation(ctx context.Context) error {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if ca.next != nil {
		return nil
	}
	r, err := ca.newRoot()
	if err != nil {
		return err
	}
	st := ca.snapshot()
	st.next = &r
	return ca.commit(ctx, st)
}

// Rotate makes the staged next root (or, if none is staged, a new root) the
// signing root. The old active root stays in the trust bundle as a previous
// root until RetirePrevious or its expiry; previous roots that have expired
// are dropped.
func (ca *CA) Rotate(ctx context.Context) error {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	st := ca.snapshot()
	if st.next == nil {
		r, err := ca.newRoot()
		if err != nil {
			return err
		}
		st.next = &r
	}
	now := ca.opts.Now()
	prev := []*x509.Certificate{st.active.cert}
	for _, c := range st.previous {
		if now.Before(c.NotAfter) {
			prev = append(prev, c)
		}
	}
	st.active, st.next, st.previous = *st.next, nil, prev
	return ca.commit(ctx, st)
}

// RetirePrevious removes the previous roots from the trust bundle. Call it
// once every certificate signed by them has been replaced (after at least
// one maximum workload TTL since Rotate).
func (ca *CA) RetirePrevious(ctx context.Context) error {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if len(ca.previous) == 0 {
		return nil
	}
	st := ca.snapshot()
	st.previous = nil
	return ca.commit(ctx, st)
}

// snapshot copies the root state; callers hold mu.
func (ca *CA) snapshot() *state {
	return &state{active: ca.active, next: ca.next, previous: slices.Clone(ca.previous)}
}

// commit saves st and then installs it; callers hold mu for writing.
func (ca *CA) commit(ctx context.Context, st *state) error {
	if err := ca.saveState(ctx, st); err != nil {
		return fmt.Errorf("save roots: %w", err)
	}
	ca.state = *st
	return nil
}

// saveState encodes st in the RootStore layout and saves it.
func (ca *CA) saveState(ctx context.Context, st *state) error {
	certs := []*x509.Certificate{st.active.cert}
	keys := []*pki.Key{st.active.key}
	if st.next != nil {
		certs = append(certs, st.next.cert)
		keys = append(keys, st.next.key)
	}
	certs = append(certs, st.previous...)
	var keyPEM []byte
	for _, k := range keys {
		b, err := k.PEM()
		if err != nil {
			return err
		}
		keyPEM = append(keyPEM, b...)
	}
	return ca.store.Save(ctx, pki.EncodeCertificatesPEM(certs...), keyPEM)
}

// parseState installs the RootStore layout (see RootStore).
func (ca *CA) parseState(certPEM, keyPEM []byte) error {
	certs, err := pki.ParseCertificatesPEM(certPEM)
	if err != nil {
		return err
	}
	keys, err := pki.ParseKeysPEM(keyPEM)
	if err != nil {
		return err
	}
	if len(keys) > 2 {
		return fmt.Errorf("%d private keys, want 1 or 2", len(keys))
	}
	for _, c := range certs {
		if !c.IsCA || !c.BasicConstraintsValid {
			return fmt.Errorf("certificate %q is not a CA", c.Subject.CommonName)
		}
	}
	if !matches(certs[0], keys[0]) {
		return errors.New("the first private key does not match the first (active) root")
	}
	ca.active, ca.next, ca.previous = root{cert: certs[0], key: keys[0]}, nil, nil
	for _, c := range certs[1:] {
		if len(keys) == 2 && ca.next == nil && matches(c, keys[1]) {
			ca.next = &root{cert: c, key: keys[1]}
			continue
		}
		ca.previous = append(ca.previous, c)
	}
	if len(keys) == 2 && ca.next == nil {
		return errors.New("the second private key matches no root")
	}
	return nil
}

func matches(c *x509.Certificate, k *pki.Key) bool {
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	return ok && pub.Equal(k.Public())
}

// newRoot creates a self-signed root: ECDSA P-256, CA with path length 0
// (it signs leaves only), key usage cert and CRL sign, a subject key ID
// (SHA-256 of the public key, truncated to 160 bits, RFC 7093) that also
// makes the CN unique, valid from one minute ago for RootTTL.
func (ca *CA) newRoot() (root, error) {
	key, err := pki.NewKey()
	if err != nil {
		return root{}, err
	}
	pub := key.Public().(*ecdsa.PublicKey)
	point, err := pub.Bytes()
	if err != nil {
		return root{}, err
	}
	sum := sha256.Sum256(point)
	ski := sum[:20]
	serial, err := newSerial()
	if err != nil {
		return root{}, err
	}
	now := ca.opts.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization: []string{"Capstan"},
			CommonName:   "Capstan Root CA " + hex.EncodeToString(ski[:4]),
		},
		NotBefore:             now.Add(-ClockSkew),
		NotAfter:              now.Add(ca.opts.RootTTL),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SubjectKeyId:          ski,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key.Signer())
	if err != nil {
		return root{}, fmt.Errorf("create root: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return root{}, err
	}
	return root{cert: cert, key: key}, nil
}

// newSerial is a random positive 128-bit serial number.
func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
}
