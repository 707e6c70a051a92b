package certificates

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/capstanmesh/capstan/controllers/meshstatus"
	"github.com/capstanmesh/capstan/internal/meshmetrics"
	"github.com/capstanmesh/capstan/pki"
	"github.com/capstanmesh/capstan/pki/certmanager"
)

// Defaults of Options.
const (
	DefaultServingCertTTL = 24 * time.Hour
	defaultWorkers        = 4
	maxRetryDelay         = time.Minute
)

// Options configure a Manager.
type Options struct {
	// Client writes the built-in CA's Secret; Reader reads the Mesh and
	// that Secret (the manager's API reader).
	Client client.Client
	Reader client.Reader
	// MeshStatus is the Mesh's status writer, which the IssuerReady
	// condition is handed to (one writing with Client, Reader and Recorder
	// when nil).
	MeshStatus *meshstatus.Writer
	// Config reaches the API server for cert-manager's objects.
	Config   *rest.Config
	Recorder recorder.EventRecorder
	Logger   logr.Logger
	// Namespace is the operator's: the built-in CA's Secret, Capstan's
	// CertificateRequests and a Mesh's Issuer live there.
	Namespace string
	// RootSecretName is the built-in CA's Secret (DefaultRootSecretName).
	RootSecretName string
	// ServingDNSNames, when set, are the names of the xDS serving
	// certificate (GetCertificate).
	ServingDNSNames []string
	// ServingTTL is the serving certificate's lifetime (DefaultServingCertTTL).
	ServingTTL time.Duration
	// MaxWorkloadTTL, when set, caps Mesh.spec.certificates.workloadCertTTL.
	MaxWorkloadTTL time.Duration
	// IssueTimeout bounds one issuance (certmanager.DefaultIssueTimeout).
	IssueTimeout time.Duration
	// Workers is how many issuances run at once (4).
	Workers int
	// MaxTrustTransition bounds the window after a CA change during which
	// the xDS serving certificate still comes from the previous CA
	// (DefaultMaxTrustTransition); see SetProxyRoots.
	MaxTrustTransition time.Duration
	// TransitionPoll is how often, during that window, the connected
	// proxies' roots are looked at (5s).
	TransitionPoll time.Duration
}

// Manager issues and renews the workload certificate of every
// identity that has a connected proxy (the runner says which, SetWanted)
// and the xDS server's serving certificate, from the provider the Mesh
// names. Keys stay in memory. It implements runner.SecretSource and is a
// controller-runtime Runnable; Reconciler feeds it the Mesh.
type Manager struct {
	opts Options
	log  logr.Logger
	wake chan struct{}

	mu sync.Mutex
	// cfg is the Mesh's certificate configuration; nil until known.
	cfg *certConfig
	// provider signs; nil until built from cfg. epoch counts providers, so
	// certificates of an older provider are replaced.
	provider pki.Provider
	epoch    int
	// bundle is the trust bundle proxies get: the provider's, plus the
	// previous provider's while certificates of it are in use.
	bundle, prevBundle, providerBundle []byte
	// servingProvider signs the serving certificate (servingEpoch is its
	// epoch): the provider, except during a trust transition, when it is
	// the previous one.
	servingProvider pki.Provider
	servingEpoch    int
	transition      *trustTransition
	proxyRoots      pki.ProxyRoots
	cmClient        client.Client
	workloads       map[string]*certState
	serving         *certState
	servingReady    chan struct{}
	inflight        int
	subscribers     []func(identity string)
	issuer          issuerState
	statusDirty     chan struct{}
}

// certState is one certificate kept up to date: a workload identity's or
// the serving certificate.
type certState struct {
	id       pki.Identity
	dnsNames []string
	cred     *pki.Credential
	tlsCert  *tls.Certificate
	epoch    int
	inflight bool
	failures int
	retryAt  time.Time
}

// New returns a manager; start it with Start (or add it
// to a controller-runtime manager) and feed it with a Reconciler.
func New(opts Options) *Manager {
	if opts.ServingTTL <= 0 {
		opts.ServingTTL = DefaultServingCertTTL
	}
	if opts.IssueTimeout <= 0 {
		opts.IssueTimeout = certmanager.DefaultIssueTimeout
	}
	if opts.Workers <= 0 {
		opts.Workers = defaultWorkers
	}
	if opts.MaxTrustTransition <= 0 {
		opts.MaxTrustTransition = DefaultMaxTrustTransition
	}
	if opts.TransitionPoll <= 0 {
		opts.TransitionPoll = defaultTransitionPoll
	}
	if opts.Reader == nil {
		opts.Reader = opts.Client
	}
	if opts.MeshStatus == nil {
		opts.MeshStatus = meshstatus.NewWriter(opts.Client, opts.Reader, opts.Recorder)
	}
	log := opts.Logger
	if log.GetSink() == nil {
		log = logr.Discard()
	}
	m := &Manager{
		opts:         opts,
		log:          log,
		wake:         make(chan struct{}, 1),
		workloads:    map[string]*certState{},
		servingReady: make(chan struct{}),
		statusDirty:  make(chan struct{}, 1),
	}
	if len(opts.ServingDNSNames) > 0 {
		m.serving = &certState{dnsNames: slices.Clone(opts.ServingDNSNames)}
	}
	return m
}

// OnChange implements runner.SecretSource.
func (m *Manager) OnChange(f func(identity string)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.subscribers = append(m.subscribers, f)
}

// SetWanted implements runner.SecretSource: identities (SPIFFE IDs) not in
// the list are dropped with their keys; new ones are issued.
func (m *Manager) SetWanted(identities []string) {
	m.mu.Lock()
	next := make(map[string]*certState, len(identities))
	for _, s := range identities {
		if st, ok := m.workloads[s]; ok {
			next[s] = st
			continue
		}
		id, err := pki.ParseSpiffeID(s)
		if err != nil {
			m.log.Error(err, "not issuing a certificate for an invalid identity", "identity", s)
			continue
		}
		next[s] = &certState{id: id}
	}
	for s := range m.workloads {
		if _, ok := next[s]; !ok {
			meshmetrics.ForgetCertificate(s)
		}
	}
	m.workloads = next
	m.mu.Unlock()
	m.signal()
}

// Credential implements runner.SecretSource.
func (m *Manager) Credential(identity string) (*pki.Credential, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.workloads[identity]
	if !ok || st.cred == nil {
		return nil, false
	}
	return st.cred, true
}

// GetCertificate is the xDS server's tls.Config.GetCertificate: the serving
// certificate for ServingDNSNames, renewed in the background. Before the
// first one is issued it waits, up to the handshake's context.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if m.serving == nil {
		return nil, errors.New("no serving DNS names configured")
	}
	ctx := context.Background()
	if hello != nil && hello.Context() != nil {
		ctx = hello.Context()
	}
	ctx, cancel := context.WithTimeout(ctx, m.opts.IssueTimeout)
	defer cancel()
	select {
	case <-m.servingReady:
	case <-ctx.Done():
		return nil, fmt.Errorf("no xDS serving certificate yet: %w", ctx.Err())
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.serving.tlsCert, nil
}

// TrustBundle returns the PEM roots that clients of the xDS server (and
// peers) verify certificates against; nil before the provider knows them.
func (m *Manager) TrustBundle() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.bundle)
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: every
// replica serves xDS, so every replica issues for its own proxies.
func (m *Manager) NeedLeaderElection() bool { return false }

// Start implements manager.Runnable: it issues and renews until ctx is done.
func (m *Manager) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { m.runIssuerReporter(ctx) })
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if !m.hasProvider() {
			// No Mesh event came (there may be no Mesh), or the provider
			// could not be built: read the Mesh here too.
			m.loadMesh(ctx)
		}
		inTransition := m.checkTransition(time.Now())
		next := m.dispatch(ctx, &wg)
		if inTransition {
			next = minTime(next, time.Now().Add(m.opts.TransitionPoll))
		}
		timer.Reset(max(time.Until(next), 0))
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-m.wake:
		case <-timer.C:
		}
	}
}

func (m *Manager) hasProvider() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.provider != nil
}

// loadMesh reads the Mesh and applies it; failures are retried by the loop.
func (m *Manager) loadMesh(ctx context.Context) {
	mesh, err := readMesh(ctx, m.opts.Reader)
	if err == nil {
		err = m.SetMesh(ctx, mesh)
	}
	if err != nil && ctx.Err() == nil {
		m.log.Error(err, "setting up the certificate provider failed; retrying")
	}
}

func (m *Manager) signal() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// dispatch starts the issuances that are due, as far as workers allow, and
// returns when the next one falls due.
func (m *Manager) dispatch(ctx context.Context, wg *sync.WaitGroup) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	next := now.Add(time.Hour)
	if m.provider == nil {
		return now.Add(5 * time.Second)
	}
	states := make([]*certState, 0, len(m.workloads)+1)
	if m.serving != nil {
		states = append(states, m.serving)
	}
	for _, k := range slices.Sorted(maps.Keys(m.workloads)) {
		states = append(states, m.workloads[k])
	}
	for _, st := range states {
		if st.inflight || (st.dnsNames == nil && st.id.TrustDomain != m.cfg.trustDomain) {
			continue // identities of another trust domain leave with the next mesh
		}
		provider, epoch := m.provider, m.epoch
		if st == m.serving {
			provider, epoch = m.servingProvider, m.servingEpoch
		}
		if provider == nil {
			continue
		}
		due := m.dueAt(st)
		if due.After(now) {
			next = minTime(next, due)
			continue
		}
		if m.inflight >= m.opts.Workers {
			continue // a finishing issuance signals
		}
		st.inflight = true
		m.inflight++
		job := issueJob{st: st, provider: provider, epoch: epoch, cfg: *m.cfg}
		wg.Go(func() { m.finish(job, m.issue(ctx, job)) })
	}
	return next
}

// dueAt is when a certificate must be (re)issued: now when it has none or
// one of an older provider, else at its renewal time; never before a retry
// after a failure.
func (m *Manager) dueAt(st *certState) time.Time {
	due := time.Time{}
	if st.cred != nil && st.epoch == m.epochOf(st) {
		due = st.cred.RenewAt
	}
	if st.retryAt.After(due) {
		due = st.retryAt
	}
	return due
}

// epochOf is the epoch of the provider that issues st: the serving
// provider's for the serving certificate. m.mu is held.
func (m *Manager) epochOf(st *certState) int {
	if st == m.serving {
		return m.servingEpoch
	}
	return m.epoch
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// retryDelay backs off 1s, 2s, 4s, ... up to a minute.
func retryDelay(failures int) time.Duration {
	d := time.Second << min(failures-1, 6)
	return min(d, maxRetryDelay)
}
