package certificates

import (
	"context"
	"fmt"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/pki"
	"github.com/capstanmesh/capstan/pki/builtin"
	"github.com/capstanmesh/capstan/pki/certmanager"
)

// Defaults that apply when there is no Mesh (the CRD defaults otherwise).
const (
	defaultTrustDomain     = "cluster.local"
	defaultWorkloadCertTTL = 24 * time.Hour
)

// certConfig is what the certificate manager takes from the Mesh.
type certConfig struct {
	provider    meshv1alpha1.CertificateProvider
	issuer      meshv1alpha1.IssuerReference
	trustDomain string
	ttl         time.Duration
	fraction    float64
	// meshExists says whether there is a Mesh to write conditions to.
	meshExists bool
}

// certConfigOf reads a Mesh's certificate settings; nil means no Mesh.
func certConfigOf(mesh *meshv1alpha1.Mesh) certConfig {
	cfg := certConfig{
		provider:    meshv1alpha1.ProviderBuiltIn,
		trustDomain: defaultTrustDomain,
		ttl:         defaultWorkloadCertTTL,
		fraction:    pki.DefaultRotationFraction,
	}
	if mesh == nil {
		return cfg
	}
	cfg.meshExists = true
	c := mesh.Spec.Certificates
	if c.Provider != "" {
		cfg.provider = c.Provider
	}
	if c.IssuerRef != nil {
		cfg.issuer = *c.IssuerRef
	}
	if mesh.Spec.TrustDomain != "" {
		cfg.trustDomain = mesh.Spec.TrustDomain
	}
	if c.WorkloadCertTTL.Duration > 0 {
		cfg.ttl = c.WorkloadCertTTL.Duration
	}
	if c.RotationFraction > 0 {
		cfg.fraction = c.RotationFraction
	}
	return cfg
}

// sameProvider says whether two configs sign with the same provider.
func (c certConfig) sameProvider(o certConfig) bool {
	if c.provider != o.provider {
		return false
	}
	if c.provider == meshv1alpha1.ProviderBuiltIn {
		return c.trustDomain == o.trustDomain
	}
	return c.issuer == o.issuer
}

// SetMesh applies the Mesh's certificate settings (nil: there is no Mesh).
// A change of provider or issuer builds a new provider and replaces every
// certificate; until a replacement is issued, proxies keep the old one and
// trust both CAs. An error means the provider could not be built; the
// caller retries.
func (m *Manager) SetMesh(ctx context.Context, mesh *meshv1alpha1.Mesh) error {
	cfg := certConfigOf(mesh)
	m.mu.Lock()
	old, current := m.cfg, m.provider != nil
	m.cfg = &cfg
	select { // the condition's observedGeneration follows the Mesh
	case m.statusDirty <- struct{}{}:
	default:
	}
	m.mu.Unlock()
	defer m.signal()
	if old != nil && current && old.sameProvider(cfg) {
		return nil
	}
	p, err := m.buildProvider(ctx, cfg)
	readyErr := err
	if err == nil {
		readyErr = p.Ready(ctx)
	}
	changed, subs, err := m.installProvider(ctx, cfg, p, err, readyErr)
	notify(subs, changed)
	return err
}

// installProvider makes p the provider (unless building it failed, or a
// newer config arrived meanwhile) and returns the identities whose bundle
// changed, with the subscribers to tell.
func (m *Manager) installProvider(ctx context.Context, cfg certConfig, p pki.Provider, buildErr, readyErr error) ([]string, []func(string), error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setIssuerLocked(issuerStateOf(readyErr))
	if buildErr != nil {
		m.provider = nil
		return nil, nil, buildErr
	}
	if m.cfg != nil && !m.cfg.sameProvider(cfg) {
		return nil, nil, nil // a newer config arrived meanwhile; it builds its own
	}
	m.provider = p
	m.epoch++
	m.prevBundle, m.providerBundle = m.bundle, nil
	m.beginTransitionLocked(time.Now())
	m.log.Info("certificate provider set", "provider", cfg.provider, "issuer", cfg.issuer.Name, "trustDomain", cfg.trustDomain)
	b, err := p.TrustBundle(ctx)
	if err != nil {
		return nil, nil, nil // cert-manager: known after the first issuance
	}
	return m.refreshBundleLocked(b), m.subscribers, nil
}

func (m *Manager) buildProvider(ctx context.Context, cfg certConfig) (pki.Provider, error) {
	if m.opts.Namespace == "" {
		return nil, errNoNamespace
	}
	switch cfg.provider {
	case meshv1alpha1.ProviderCertManager:
		c, err := m.certManagerClient()
		if err != nil {
			return nil, err
		}
		return &certmanager.Provider{Client: c, Namespace: m.opts.Namespace, Issuer: cfg.issuer, Timeout: m.opts.IssueTimeout}, nil
	case meshv1alpha1.ProviderBuiltIn, "":
		store := &SecretRootStore{Client: m.opts.Client, Reader: m.opts.Reader, Namespace: m.opts.Namespace, Name: m.opts.RootSecretName}
		ca, err := builtin.New(ctx, store, builtin.Options{TrustDomain: cfg.trustDomain})
		if err != nil {
			return nil, fmt.Errorf("%w: built-in CA: %w", pki.ErrIssuerNotReady, err)
		}
		return ca, nil
	default:
		return nil, fmt.Errorf("%w: unknown certificate provider %q", pki.ErrIssuerNotReady, cfg.provider)
	}
}

func (m *Manager) certManagerClient() (client.Client, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmClient == nil {
		if m.opts.Config == nil {
			return nil, fmt.Errorf("%w: no API server config for cert-manager", pki.ErrIssuerNotReady)
		}
		c, err := certmanager.NewClient(m.opts.Config)
		if err != nil {
			return nil, err
		}
		m.cmClient = c
	}
	return m.cmClient, nil
}
