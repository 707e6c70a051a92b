package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/capstanmesh/capstan/pki"
	"github.com/capstanmesh/capstan/pki/builtin"
	"github.com/capstanmesh/capstan/xds/runner"
	"github.com/capstanmesh/capstan/xds/server"
	"github.com/capstanmesh/capstan/xds/translate"
)

// serverName is the DNS name of the xDS serving certificate.
const serverName = "capstan-xds.capstan-system.svc"

// controlPlane is the real runner publishing into the real xDS server on a
// loopback port, as the operator wires them, without the API server:
// plaintext, or TLS with a serving certificate of the built-in CA; stream
// authentication is off either way. Workload certificates for SDS are
// issued up front for every identity of the mesh (secretSource).
type controlPlane struct {
	srv    *server.Server
	runner *runner.Runner
	addr   string
	// caPEM is the CA the clients trust; empty when plaintext.
	caPEM []byte

	cancel context.CancelFunc
	wg     sync.WaitGroup
	errMu  sync.Mutex
	err    error
}

// startControlPlane starts the server and the runner; identities are the
// SPIFFE IDs to issue workload certificates for.
func startControlPlane(ctx context.Context, useTLS bool, identities []string) (*controlPlane, error) {
	ca, err := builtin.New(ctx, &builtin.MemoryStore{}, builtin.Options{})
	if err != nil {
		return nil, fmt.Errorf("starting the built-in CA: %w", err)
	}
	secrets, err := issueAll(ctx, ca, identities)
	if err != nil {
		return nil, err
	}
	opts := server.Options{}
	cp := &controlPlane{}
	if useTLS {
		if opts.GetCertificate, cp.caPEM, err = servingCert(ctx, ca); err != nil {
			return nil, err
		}
	}
	opts.OnStatusChange = func(id string) { cp.runner.ProxyStatusChanged(id) }
	cp.srv = server.New(opts)
	cp.runner = runner.New(runner.Options{Publisher: cp.srv, Sync: cp.srv, Secrets: secrets, Connections: cp.srv})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening on loopback: %w", err)
	}
	cp.addr = lis.Addr().String()
	ctx, cp.cancel = context.WithCancel(ctx)
	cp.wg.Go(func() { cp.setErr(cp.srv.Serve(ctx, lis)) })
	cp.wg.Go(func() { cp.setErr(cp.runner.Start(ctx)) })
	return cp, nil
}

func (cp *controlPlane) setErr(err error) {
	if err == nil {
		return
	}
	cp.errMu.Lock()
	defer cp.errMu.Unlock()
	if cp.err == nil {
		cp.err = err
	}
}

// stop stops the server and the runner and returns the first error either returned.
func (cp *controlPlane) stop() error {
	cp.cancel()
	cp.wg.Wait()
	cp.errMu.Lock()
	defer cp.errMu.Unlock()
	return cp.err
}

// push hands new inputs to the runner.
func (cp *controlPlane) push(in *translate.Inputs) { cp.runner.Push(in) }

// published counts the nodes that have config in the server.
func (cp *controlPlane) published(nodes []string) int {
	n := 0
	for _, id := range nodes {
		if st, ok := cp.srv.ProxyStatus(id); ok && len(st.Published) > 0 {
			n++
		}
	}
	return n
}

func servingCert(ctx context.Context, ca *builtin.CA) (func(*tls.ClientHelloInfo) (*tls.Certificate, error), []byte, error) {
	key, cert, err := ca.ServingCert(ctx, []string{serverName}, 24*time.Hour)
	if err != nil {
		return nil, nil, fmt.Errorf("issuing the xDS serving certificate: %w", err)
	}
	tc, err := key.TLSCertificate(cert.ChainPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("the xDS serving certificate: %w", err)
	}
	bundle, err := ca.TrustBundle(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("the CA's trust bundle: %w", err)
	}
	return func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &tc, nil }, bundle, nil
}

// secretSource is a runner.SecretSource whose credentials are all issued
// before the run, so that issuance is not part of what is measured.
type secretSource struct {
	creds map[string]*pki.Credential
}

var _ runner.SecretSource = (*secretSource)(nil)

func issueAll(ctx context.Context, ca *builtin.CA, identities []string) (*secretSource, error) {
	bundle, err := ca.TrustBundle(ctx)
	if err != nil {
		return nil, fmt.Errorf("the CA's trust bundle: %w", err)
	}
	s := &secretSource{creds: map[string]*pki.Credential{}}
	for _, id := range identities {
		cred, err := issue(ctx, ca, id, bundle)
		if err != nil {
			return nil, err
		}
		s.creds[id] = cred
	}
	return s, nil
}

func issue(ctx context.Context, ca *builtin.CA, id string, bundle []byte) (*pki.Credential, error) {
	ident, err := pki.ParseSpiffeID(id)
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", id, err)
	}
	key, csr, err := pki.NewKeyAndCSR(ident)
	if err != nil {
		return nil, fmt.Errorf("key for %s: %w", id, err)
	}
	cert, err := ca.Sign(ctx, pki.CertificateRequest{CSR: csr, Identity: ident, TTL: 24 * time.Hour})
	if err != nil {
		return nil, fmt.Errorf("signing for %s: %w", id, err)
	}
	return &pki.Credential{Identity: id, Key: key, Cert: cert, BundlePEM: bundle, RenewAt: time.Now().Add(12 * time.Hour)}, nil
}

func (s *secretSource) SetWanted([]string) {}

func (s *secretSource) Credential(identity string) (*pki.Credential, bool) {
	c, ok := s.creds[identity]
	return c, ok
}

func (s *secretSource) OnChange(func(string)) {}
