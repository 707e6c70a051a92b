package dataplane

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/pki"
	"github.com/capstanmesh/capstan/pki/certmanager"
	"github.com/capstanmesh/capstan/test/envtest"
)

// presentedCert connects from the host to the pod's app port — captured
// by its sidecar's inbound listener — and returns the certificate the
// sidecar presents. The host has no client certificate, so STRICT then
// ends the connection; the server's certificate came first.
func presentedCert(t *testing.T, p *pod) *x509.Certificate {
	t.Helper()
	var got *x509.Certificate
	cfg := &tls.Config{
		InsecureSkipVerify: true, //nolint:gosec // the certificate is checked below against the mesh's roots
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) > 0 {
				got = cs.PeerCertificates[0]
			}
			return nil
		},
	}
	d := &net.Dialer{Timeout: 3 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", net.JoinHostPort(p.netns.IP.String(), strconv.Itoa(appPort)), cfg)
	if err == nil {
		_ = conn.Close()
	}
	if got == nil {
		t.Fatalf("no certificate from %s's sidecar: %v", p.obj.Name, err)
	}
	return got
}

// checkPresented fails t unless cert is a workload certificate for p's
// identity that chains to bundle.
func checkPresented(t *testing.T, p *pod, cert *x509.Certificate, bundle []byte) {
	t.Helper()
	id := pki.SpiffeID("cluster.local", p.obj.Namespace, p.obj.Spec.ServiceAccountName)
	chain := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	if err := pki.VerifyWorkloadCert(chain, bundle, id, time.Now()); err != nil {
		t.Errorf("%s's sidecar presents %s (serial %s): %v", p.obj.Name, cert.URIs, cert.SerialNumber, err)
	}
}

// TestCertificateRotation: with workload certificates living 20 seconds,
// the server's sidecar gets a renewed certificate over SDS while a client
// keeps calling (each call on a new connection to its sidecar, which pools
// its mTLS connections to the server): new connections to the server
// present the new certificate, the Envoy processes are the same, and no
// call fails.
func TestCertificateRotation(t *testing.T) {
	needRoot(t)
	stopOperator(t)
	startOperatorFor(t, operatorOptions{MaxWorkloadTTL: 20 * time.Second})
	ns := meshNamespace(t)
	peerAuth(t, ns, "default", meshv1alpha1.PeerMTLSStrict, nil)
	server, svc := echoServer(t, ns, podSpec{})
	client := startPod(t, podSpec{name: "client", namespace: ns})
	url := serviceURL(svc, "/rotation")
	waitCall(t, client, url)
	first := presentedCert(t, server)
	checkPresented(t, server, first, op.certs.TrustBundle())
	pids := []int{server.envoy.Pid(), client.envoy.Pid()}

	caller := startApp(t, client.netns, AppConfig{Mode: HTTPClient, URL: url, Interval: 100 * time.Millisecond, NewConnections: true, Name: "caller"})
	var renewed *x509.Certificate
	envtest.Eventually(t, wait, func() error {
		c := presentedCert(t, server)
		if c.SerialNumber.Cmp(first.SerialNumber) == 0 {
			return fmt.Errorf("the server still presents serial %s (expires %s)", first.SerialNumber, first.NotAfter)
		}
		renewed = c
		return nil
	})
	checkPresented(t, server, renewed, op.certs.TrustBundle())
	// Calls keep going on connections that present the renewed certificate.
	seen := len(mustParse(t, caller.Output()))
	envtest.Eventually(t, wait, func() error {
		if n := len(mustParse(t, caller.Output())); n < seen+10 {
			return fmt.Errorf("%d calls after the renewal, want 10", n-seen)
		}
		return nil
	})
	if err := caller.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	res := mustParse(t, caller.Output())
	for _, r := range res {
		if !r.OK || r.Report == nil || r.Report.Pod != "server" {
			t.Errorf("call %d failed during rotation: %+v", r.N, r)
		}
	}
	for i, p := range []*pod{server, client} {
		if exited, err := p.envoy.Exited(); exited || p.envoy.Pid() != pids[i] {
			t.Errorf("envoy of %s restarted or exited (%v)", p.obj.Name, err)
		}
	}
}

func mustParse(t *testing.T, out string) []CallResult {
	t.Helper()
	// The last line may be half written.
	var complete strings.Builder
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if line := sc.Text(); strings.HasSuffix(line, "}") {
			complete.WriteString(line + "\n")
		}
	}
	res, err := ParseCalls(complete.String())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestCertManagerIssuer: with the Mesh naming a cert-manager CA Issuer,
// served by cert-manager's real controllers, the xDS serving certificate
// and the workload certificates come from that CA: a STRICT meshed call
// works, and the server's sidecar presents a certificate of the Issuer's CA.
func TestCertManagerIssuer(t *testing.T) {
	needRoot(t)
	ca := newTestCA(t)
	createCAIssuer(t, "dataplane-ca", ca)
	setMesh(t, meshv1alpha1.MeshSpec{Certificates: meshv1alpha1.Certificates{
		Provider:  meshv1alpha1.ProviderCertManager,
		IssuerRef: &meshv1alpha1.IssuerReference{Name: "dataplane-ca", Kind: "Issuer"},
	}})
	envtest.Eventually(t, wait, func() error {
		mesh := &meshv1alpha1.Mesh{}
		if err := env.Client.Get(context.Background(), client.ObjectKey{Name: meshv1alpha1.MeshName}, mesh); err != nil {
			return err
		}
		c := meta.FindStatusCondition(mesh.Status.Conditions, meshv1alpha1.ConditionIssuerReady)
		if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != mesh.Generation {
			return fmt.Errorf("IssuerReady %+v", c)
		}
		return servingCertFrom(ca.cert, true)
	})

	ns := meshNamespace(t)
	peerAuth(t, ns, "default", meshv1alpha1.PeerMTLSStrict, nil)
	server, svc := echoServer(t, ns, podSpec{})
	client := startPod(t, podSpec{name: "client", namespace: ns})
	r := waitCall(t, client, serviceURL(svc, "/cert-manager"))
	if want := "URI=spiffe://cluster.local/ns/" + ns + "/sa/client"; !strings.Contains(r.Report.XFCC, want) {
		t.Errorf("x-forwarded-client-cert %q, want %s", r.Report.XFCC, want)
	}
	checkPresented(t, server, presentedCert(t, server), ca.certPEM)
}

// servingCertFrom checks whether the xDS serving certificate is (or, with
// want false, is not) signed by ca.
func servingCertFrom(ca *x509.Certificate, want bool) error {
	c, err := op.certs.GetCertificate(&tls.ClientHelloInfo{ServerName: xdsHosts()[0]})
	if err != nil {
		return err
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return err
	}
	if got := leaf.CheckSignatureFrom(ca) == nil; got != want {
		return fmt.Errorf("the xDS serving certificate (issuer %s) signed by %s: %v, want %v", leaf.Issuer, ca.Subject, got, want)
	}
	return nil
}

// setMesh creates the Mesh "default" with spec; when t ends it is deleted
// and the operator is back on the built-in CA.
func setMesh(t *testing.T, spec meshv1alpha1.MeshSpec) {
	t.Helper()
	mesh := &meshv1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: meshv1alpha1.MeshName}, Spec: spec}
	if err := env.Client.Create(context.Background(), mesh); err != nil {
		t.Fatalf("creating the Mesh: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Client.Delete(context.Background(), mesh); client.IgnoreNotFound(err) != nil {
			t.Errorf("deleting the Mesh: %v", err)
		}
		envtest.Eventually(t, wait, func() error {
			if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(mesh), mesh); !apierrors.IsNotFound(err) {
				return fmt.Errorf("the Mesh is still there (%w)", err)
			}
			return nil
		})
	})
}

// testCA is a self-signed CA for cert-manager's CA Issuer.
type testCA struct {
	cert            *x509.Certificate
	certPEM, keyPEM []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "dataplane test issuer CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{
		cert:    cert,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
}

// createCAIssuer creates a CA Issuer in the operator's namespace backed by
// ca and waits until cert-manager reports it ready. When t ends, the
// operator is back on the built-in CA first, then the Issuer goes.
func createCAIssuer(t *testing.T, name string, ca *testCA) {
	t.Helper()
	ctx := context.Background()
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: name},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: ca.certPEM, corev1.TLSPrivateKeyKey: ca.keyPEM},
	}
	if err := env.Client.Create(ctx, sec); err != nil {
		t.Fatal(err)
	}
	cm, err := certmanager.NewClient(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	issuer := &cmapi.Issuer{
		ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: name},
		Spec:       cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{CA: &cmapi.CAIssuer{SecretName: name}}},
	}
	if err := cm.Create(ctx, issuer); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		envtest.Eventually(t, wait, func() error { return servingCertFrom(ca.cert, false) })
		_ = cm.Delete(context.Background(), issuer)
		_ = env.Client.Delete(context.Background(), sec)
	})
	envtest.Eventually(t, wait, func() error {
		is := &cmapi.Issuer{}
		if err := cm.Get(ctx, client.ObjectKeyFromObject(issuer), is); err != nil {
			return err
		}
		for _, c := range is.Status.Conditions {
			if c.Type == cmapi.IssuerConditionReady && c.Status == cmmeta.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("issuer %s: conditions %+v, want Ready", name, is.Status.Conditions)
	})
}
