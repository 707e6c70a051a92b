package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/controllers/certificates"
	"github.com/capstanmesh/capstan/controllers/inputs"
	"github.com/capstanmesh/capstan/controllers/rootca"
	"github.com/capstanmesh/capstan/pki"
	"github.com/capstanmesh/capstan/test/envtest"
	"github.com/capstanmesh/capstan/test/xdsclient"
	"github.com/capstanmesh/capstan/xds/auth/kubeauth"
	"github.com/capstanmesh/capstan/xds/generate"
	"github.com/capstanmesh/capstan/xds/runner"
	"github.com/capstanmesh/capstan/xds/server"
)

// xdsServerName is the name proxies dial the xDS server by.
const xdsServerName = "capstan-xds.capstan-system.svc"

// startTLSOperator is startOperator with what a cluster runs: xDS over TLS
// with the mesh's serving certificate, the root CA ConfigMap published in
// the (injection-enabled) namespace, and the certificate manager told the
// connected proxies' roots.
func startTLSOperator(t *testing.T) *operator {
	t.Helper()
	ns := env.NewNamespace(t)
	enableInjection(t, ns)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	op := &operator{ns: ns, addr: lis.Addr().String()}
	env.StartManager(t, func(mgr ctrl.Manager) error {
		certs, err := certificates.NewFor(mgr, certificates.Options{
			Namespace: operatorNamespace, IssueTimeout: 10 * time.Second,
			ServingDNSNames: []string{xdsServerName},
			// The window must end because the proxies trust the new root,
			// never by running out within the test.
			MaxTrustTransition: time.Hour,
			TransitionPoll:     50 * time.Millisecond,
			// One issuance at a time, the serving certificate first: once
			// a proxy holds a workload certificate of the new CA, the
			// serving certificate has been re-issued too, unless the
			// window holds it back (so the checks below cannot race).
			Workers: 1,
		})
		if err != nil {
			return err
		}
		op.certs = certs
		publisher := &rootca.Publisher{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Bundle: certificates.BundleOf(certs)}
		if err := publisher.SetupWithManager(mgr); err != nil {
			return err
		}
		certs.OnChange(func(string) { publisher.BundleChanged() })
		var r *runner.Runner
		srv := server.New(server.Options{
			Authenticator:  &kubeauth.TokenReviewAuthenticator{Client: env.Client},
			Pods:           apiPods{c: env.Client},
			OnStatusChange: func(id string) { r.ProxyStatusChanged(id) },
			GetCertificate: certs.GetCertificate,
		})
		certs.SetProxyRoots(runner.ConnectedRoots{Statuses: srv})
		r = runner.New(runner.Options{
			Publisher: srv, Sync: srv, Secrets: certs, Connections: srv,
			Debounce: 20 * time.Millisecond, MaxDelay: 200 * time.Millisecond,
		})
		if err := (&inputs.Reconciler{Client: mgr.GetClient(), Sink: r}).SetupWithManager(mgr); err != nil {
			return err
		}
		if err := mgr.Add(r); err != nil {
			return err
		}
		return mgr.Add(manager.RunnableFunc(func(ctx context.Context) error { return srv.Serve(ctx, lis) }))
	}, ns)
	return op
}

func enableInjection(t *testing.T, ns string) {
	t.Helper()
	obj := &corev1.Namespace{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Name: ns}, obj); err != nil {
		t.Fatal(err)
	}
	obj.Labels[meshv1alpha1.LabelInject] = meshv1alpha1.InjectEnabled
	if err := env.Client.Update(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
}

// startRoots is what a proxy reads from the root CA ConfigMap when it
// starts: the bundle it verifies the xDS server with (the mounted file)
// and the fingerprints it reports (the environment variable).
type startRoots struct {
	bundlePEM    []byte
	fingerprints string
}

// readRootCA reads the namespace's root CA ConfigMap, once it satisfies accept.
func readRootCA(t *testing.T, ns string, accept func(startRoots) error) startRoots {
	t.Helper()
	var got startRoots
	envtest.Eventually(t, wait, func() error {
		cm := &corev1.ConfigMap{}
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: meshv1alpha1.RootCAConfigMapName}, cm); err != nil {
			return err
		}
		r := startRoots{
			bundlePEM:    []byte(cm.Data[meshv1alpha1.RootCAConfigMapKey]),
			fingerprints: cm.Data[meshv1alpha1.RootCAConfigMapFingerprintsKey],
		}
		fps, err := pki.RootFingerprints(r.bundlePEM)
		if err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
		if r.fingerprints != pki.JoinFingerprints(fps) {
			return fmt.Errorf("fingerprints %q do not match the bundle's %q", r.fingerprints, pki.JoinFingerprints(fps))
		}
		if accept != nil {
			if err := accept(r); err != nil {
				return err
			}
		}
		got = r
		return nil
	})
	return got
}

func (r startRoots) pool(t *testing.T) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(r.bundlePEM) {
		t.Fatal("no certificate in the root bundle")
	}
	return pool
}

// connectTLS starts the workload's proxy as Envoy does: TLS verified
// against the roots it read at start, which it also reports as node metadata.
func (w *workload) connectTLS(t *testing.T, op *operator, roots startRoots) *xdsclient.Delta {
	t.Helper()
	creds := credentials.NewTLS(&tls.Config{RootCAs: roots.pool(t), ServerName: xdsServerName, MinVersion: tls.VersionTLS12})
	c := xdsclient.DialDeltaWith(t, op.addr, w.nodeID, grpc.WithTransportCredentials(creds), xdsclient.WithBearerToken(w.token(t)))
	c.SetNodeMetadata(map[string]string{meshv1alpha1.NodeMetaRoots: roots.fingerprints})
	c.Subscribe(t, resourcev3.ClusterType)
	c.Subscribe(t, resourcev3.ListenerType)
	c.Subscribe(t, resourcev3.SecretType, generate.SecretWorkloadCert, generate.SecretRootCA)
	return c
}

// handshake is a TLS handshake with the xDS server as a proxy holding
// roots makes on every (re)connection; it returns the server's leaf.
func handshake(op *operator, roots *x509.CertPool) (*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", op.addr, &tls.Config{
		RootCAs: roots, ServerName: xdsServerName, NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12,
	})
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close() }()
	return conn.ConnectionState().PeerCertificates[0], nil
}

func poolOf(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// TestCAChangeOverlapWindow changes the Mesh's CA from the built-in CA to a
// cert-manager CA Issuer while a proxy is connected. During the window the
// published bundle holds both roots, the proxy keeps its stream, gets a
// certificate of the new CA and a ROOTCA holding both roots (so it still
// verifies peers holding certificates of the old CA), and a proxy that
// (re)connects with the root it read before the change still verifies the
// server. Once every connected proxy reports the new root (they were
// restarted with the new ConfigMap), the server switches to the new CA; a
// proxy started with only the old root is then refused by its own TLS
// check, as it must be: it is restarted, and reads the current bundle.
func TestCAChangeOverlapWindow(t *testing.T) {
	setMesh(t, meshv1alpha1.MeshSpec{})
	op := startTLSOperator(t)
	a := newWorkload(t, op.ns, "sa-a", "a", "10.6.0.1")
	b := newWorkload(t, op.ns, "sa-b", "b", "10.6.0.2")

	before := readRootCA(t, op.ns, nil)
	oldRoots, err := pki.ParseCertificatesPEM(before.bundlePEM)
	if err != nil {
		t.Fatal(err)
	}
	ca := a.connectTLS(t, op, before)
	cb := b.connectTLS(t, op, before)
	oldCertB := waitForCert(t, cb, b.spiffeID(), nil)
	waitForCert(t, ca, a.spiffeID(), nil)

	issuerCA := newTestCA(t)
	createCAIssuer(t, "transition-ca", issuerCA)
	setMesh(t, certManagerMesh("transition-ca", ""))

	// The proxy's stream goes on; it gets a certificate of the new CA and
	// a ROOTCA with both roots.
	newCertA := waitForCert(t, ca, a.spiffeID(), func(r *received) error {
		if r.leaf.CheckSignatureFrom(issuerCA.cert) != nil {
			return errors.New("certificate not yet from the new CA")
		}
		if !bundleHolds(r.bundlePEM, issuerCA.cert) || !bundleHolds(r.bundlePEM, oldRoots[0]) {
			return errors.New("ROOTCA does not hold both roots yet")
		}
		return nil
	})
	if err := pki.VerifyWorkloadCert(oldCertB.chainPEM, newCertA.bundlePEM, b.spiffeID(), time.Now()); err != nil {
		t.Errorf("during the window a proxy with a new certificate does not trust a peer's old one: %v", err)
	}
	both := readRootCA(t, op.ns, func(r startRoots) error {
		if !bundleHolds(r.bundlePEM, issuerCA.cert) || !bundleHolds(r.bundlePEM, oldRoots[0]) {
			return errors.New("the ConfigMap does not hold both roots yet")
		}
		return nil
	})
	if err := ca.Err(); err != nil {
		t.Fatalf("the proxy's stream ended at the CA change: %v", err)
	}

	// A proxy (re)connecting with the root it read at start still verifies
	// the server: xDS is served from the old chain while old-root proxies
	// are connected.
	if _, err := handshake(op, poolOf(oldRoots...)); err != nil {
		t.Fatalf("during the window a proxy with the start-time root cannot verify the xDS server: %v", err)
	}
	again := a.connectTLS(t, op, before)
	waitForCert(t, again, a.spiffeID(), func(r *received) error {
		if r.leaf.CheckSignatureFrom(issuerCA.cert) != nil {
			return errors.New("certificate not from the new CA")
		}
		return nil
	})
	if open, _ := op.certs.InTrustTransition(); !open {
		t.Error("the trust transition is not open while proxies with only the old root are connected")
	}

	// Restart the proxies: they read the ConfigMap with both roots.
	for _, c := range []*xdsclient.Delta{ca, cb, again} {
		_ = c.Close()
	}
	ra := a.connectTLS(t, op, both)
	rb := b.connectTLS(t, op, both)
	waitForCert(t, rb, b.spiffeID(), nil)
	waitForCert(t, ra, a.spiffeID(), nil)

	// Now nobody is stranded: the server switches to the new CA.
	envtest.Eventually(t, wait, func() error {
		leaf, err := handshake(op, poolOf(issuerCA.cert))
		if err != nil {
			return fmt.Errorf("the server is not on the new CA yet: %w", err)
		}
		return leaf.CheckSignatureFrom(issuerCA.cert)
	})
	if open, _ := op.certs.InTrustTransition(); open {
		t.Error("the trust transition is still open after the switch")
	}
	for _, c := range []*xdsclient.Delta{ra, rb} {
		if err := c.Err(); err != nil {
			t.Errorf("a restarted proxy's stream ended at the switch: %v", err)
		}
	}
	// Proxies started with both roots reconnect; a proxy started with only
	// the old root is refused by its own check and must be restarted.
	if _, err := handshake(op, both.pool(t)); err != nil {
		t.Errorf("a proxy holding both roots cannot verify the server after the switch: %v", err)
	}
	var unknown x509.UnknownAuthorityError
	if _, err := handshake(op, poolOf(oldRoots...)); !errors.As(err, &unknown) {
		t.Errorf("after the switch a proxy with only the old root verified the server (err %v); want an unknown authority", err)
	}
	// When no certificate of the old CA is left, its root leaves the bundle.
	readRootCA(t, op.ns, func(r startRoots) error {
		if bundleHolds(r.bundlePEM, oldRoots[0]) || !bundleHolds(r.bundlePEM, issuerCA.cert) {
			return errors.New("the ConfigMap still holds the old root")
		}
		return nil
	})
}
