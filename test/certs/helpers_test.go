package certs

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"testing"
	"time"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/controllers/certificates"
	"github.com/capstanmesh/capstan/controllers/inputs"
	"github.com/capstanmesh/capstan/pki"
	"github.com/capstanmesh/capstan/test/envtest"
	"github.com/capstanmesh/capstan/test/xdsclient"
	"github.com/capstanmesh/capstan/xds/auth/kubeauth"
	"github.com/capstanmesh/capstan/xds/generate"
	"github.com/capstanmesh/capstan/xds/runner"
	"github.com/capstanmesh/capstan/xds/server"
)

// wait bounds every wait; nothing sleeps for a fixed time.
const wait = 30 * time.Second

// shortTTL caps workload certificates in the rotation tests (the Mesh API
// allows 10m at least): renewal falls about 4s after issuance.
const shortTTL = 8 * time.Second

// apiPods is the xDS server's PodLookup, reading the API server.
type apiPods struct{ c client.Reader }

func (p apiPods) Pod(namespace, name string) (string, string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var pod corev1.Pod
	if err := p.c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &pod); err != nil {
		return "", "", false
	}
	return string(pod.UID), pod.Spec.ServiceAccountName, true
}

// operator is the certificate manager and the xDS pipeline with
// authentication on, running in a manager against the API server.
type operator struct {
	ns    string
	addr  string
	certs *certificates.Manager
}

// startOperator runs the pipeline for a fresh namespace, with workload
// certificates capped at maxTTL (0: the Mesh's TTL).
func startOperator(t *testing.T, maxTTL time.Duration) *operator {
	t.Helper()
	ns := env.NewNamespace(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	op := &operator{ns: ns, addr: lis.Addr().String()}
	env.StartManager(t, func(mgr ctrl.Manager) error {
		certs, err := certificates.NewFor(mgr, certificates.Options{
			Namespace: operatorNamespace, MaxWorkloadTTL: maxTTL, IssueTimeout: 10 * time.Second,
			ServingDNSNames: []string{"capstan-xds.capstan-system.svc"},
		})
		if err != nil {
			return err
		}
		op.certs = certs
		var r *runner.Runner
		srv := server.New(server.Options{
			Authenticator:  &kubeauth.TokenReviewAuthenticator{Client: env.Client},
			Pods:           apiPods{c: env.Client},
			OnStatusChange: func(id string) { r.ProxyStatusChanged(id) },
		})
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

// workload is a ServiceAccount, an injected pod running as it, and a
// Service selecting it (so its inbound listener terminates mTLS).
type workload struct {
	ns, sa string
	pod    *corev1.Pod
	nodeID string
}

func (w *workload) spiffeID() string { return pki.SpiffeID("cluster.local", w.ns, w.sa) }

func newWorkload(t *testing.T, ns, sa, name, ip string) *workload {
	t.Helper()
	ctx := context.Background()
	acct := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa}}
	if err := env.Client.Create(ctx, acct); client.IgnoreAlreadyExists(err) != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": name}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{
			Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080),
		}}},
	}
	if err := env.Client.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name, Labels: labels,
			Annotations: map[string]string{meshv1alpha1.AnnotationStatus: `{"version":"test"}`},
		},
		Spec: corev1.PodSpec{
			ServiceAccountName:           sa,
			AutomountServiceAccountToken: ptr.To(false),
			Containers: []corev1.Container{{Name: "app", Image: "app:1",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}},
		},
	}
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}
	if err := env.Client.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
	id := server.NodeID{Type: server.NodeSidecar, IP: netip.MustParseAddr(ip), Pod: name, Namespace: ns, Domain: "svc.cluster.local"}
	return &workload{ns: ns, sa: sa, pod: pod, nodeID: id.String()}
}

// token is a real token from the TokenRequest API: audience capstan, bound to the pod.
func (w *workload) token(t *testing.T) string {
	t.Helper()
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	tr := &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{
		Audiences:         []string{kubeauth.XDSTokenAudience},
		ExpirationSeconds: ptr.To[int64](600),
		BoundObjectRef:    &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: w.pod.Name, UID: w.pod.UID},
	}}
	out, err := cs.CoreV1().ServiceAccounts(w.ns).CreateToken(context.Background(), w.sa, tr, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out.Status.Token
}

// connect opens an authenticated delta ADS stream as the workload's proxy
// and subscribes to listeners, clusters and its two secrets.
func (w *workload) connect(t *testing.T, op *operator) *xdsclient.Delta {
	t.Helper()
	c := xdsclient.DialDeltaWith(t, op.addr, w.nodeID, xdsclient.WithBearerToken(w.token(t)))
	c.Subscribe(t, resourcev3.ClusterType)
	c.Subscribe(t, resourcev3.ListenerType)
	c.Subscribe(t, resourcev3.SecretType, generate.SecretWorkloadCert, generate.SecretRootCA)
	return c
}

// received is what a client holds in its SDS secrets.
type received struct {
	leaf             *x509.Certificate
	chainPEM, keyPEM []byte
	bundlePEM        []byte
}

// secretsOf decodes the client's default and ROOTCA secrets.
func secretsOf(s xdsclient.State) (*received, error) {
	secrets := s[resourcev3.SecretType]
	if secrets[generate.SecretWorkloadCert] == nil || secrets[generate.SecretRootCA] == nil {
		return nil, errors.New("no default and ROOTCA secrets yet")
	}
	var cert, root tlsv3.Secret
	if err := secrets[generate.SecretWorkloadCert].UnmarshalTo(&cert); err != nil {
		return nil, err
	}
	if err := secrets[generate.SecretRootCA].UnmarshalTo(&root); err != nil {
		return nil, err
	}
	r := &received{
		chainPEM:  cert.GetTlsCertificate().GetCertificateChain().GetInlineBytes(),
		keyPEM:    cert.GetTlsCertificate().GetPrivateKey().GetInlineBytes(),
		bundlePEM: root.GetValidationContext().GetTrustedCa().GetInlineBytes(),
	}
	certs, err := pki.ParseCertificatesPEM(r.chainPEM)
	if err != nil {
		return nil, err
	}
	r.leaf = certs[0]
	return r, nil
}

// waitForCert waits until the client holds a certificate for id that
// satisfies accept, checks it and returns it.
func waitForCert(t *testing.T, c *xdsclient.Delta, id string, accept func(*received) error) *received {
	t.Helper()
	var got *received
	foreign := ""
	c.WaitFor(t, wait, func(s xdsclient.State) error {
		r, err := secretsOf(s)
		if err != nil {
			return err
		}
		if len(r.leaf.URIs) != 1 || r.leaf.URIs[0].String() != id {
			foreign = fmt.Sprint(r.leaf.URIs)
			return nil // fails below: a proxy got another identity's secret
		}
		if accept != nil {
			if err := accept(r); err != nil {
				return err
			}
		}
		got = r
		return nil
	})
	if foreign != "" {
		t.Fatalf("the proxy of %s received the certificate of %s", id, foreign)
	}
	checkCert(t, got, id)
	return got
}

// checkCert: the chain verifies against the bundle for exactly id, and the
// key is the certificate's.
func checkCert(t *testing.T, r *received, id string) {
	t.Helper()
	if err := pki.VerifyWorkloadCert(r.chainPEM, r.bundlePEM, id, time.Now()); err != nil {
		t.Fatalf("workload certificate for %s: %v", id, err)
	}
	if _, err := tls.X509KeyPair(r.chainPEM, r.keyPEM); err != nil {
		t.Fatalf("the key does not match the certificate: %v", err)
	}
}

// countResponses counts the responses of a type a client received.
func countResponses(c *xdsclient.Delta, typeURL string) int {
	n := 0
	for _, r := range c.Responses() {
		if r.TypeURL == typeURL {
			n++
		}
	}
	return n
}

// setMesh creates or updates the Mesh "default" with spec, and deletes it when t ends.
func setMesh(t *testing.T, spec meshv1alpha1.MeshSpec) {
	t.Helper()
	ctx := context.Background()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		mesh := &meshv1alpha1.Mesh{}
		err := env.Client.Get(ctx, client.ObjectKey{Name: meshv1alpha1.MeshName}, mesh)
		if apierrors.IsNotFound(err) {
			mesh = &meshv1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: meshv1alpha1.MeshName}, Spec: spec}
			return env.Client.Create(ctx, mesh)
		}
		if err != nil {
			return err
		}
		mesh.Spec = spec
		return env.Client.Update(ctx, mesh)
	})
	if err != nil {
		t.Fatalf("setting the Mesh: %v", err)
	}
	t.Cleanup(func() {
		mesh := &meshv1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: meshv1alpha1.MeshName}}
		if err := env.Client.Delete(context.Background(), mesh); client.IgnoreNotFound(err) != nil {
			t.Errorf("deleting the Mesh: %v", err)
		}
		envtest.Eventually(t, wait, func() error {
			err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(mesh), mesh)
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("the Mesh still exists (%w)", err)
		})
	})
}

// certManagerMesh names an Issuer in the operator's namespace.
func certManagerMesh(issuer, group string) meshv1alpha1.MeshSpec {
	var spec meshv1alpha1.MeshSpec
	spec.Certificates.Provider = meshv1alpha1.ProviderCertManager
	spec.Certificates.IssuerRef = &meshv1alpha1.IssuerReference{Name: issuer, Kind: "Issuer", Group: group}
	return spec
}

// waitForIssuerCondition waits for the Mesh's IssuerReady condition to
// have status and reason.
func waitForIssuerCondition(t *testing.T, status metav1.ConditionStatus, reason string) *metav1.Condition {
	t.Helper()
	var got *metav1.Condition
	envtest.Eventually(t, wait, func() error {
		mesh := &meshv1alpha1.Mesh{}
		if err := env.Client.Get(context.Background(), client.ObjectKey{Name: meshv1alpha1.MeshName}, mesh); err != nil {
			return err
		}
		c := meta.FindStatusCondition(mesh.Status.Conditions, meshv1alpha1.ConditionIssuerReady)
		if c == nil || c.Status != status || c.Reason != reason {
			return fmt.Errorf("IssuerReady is %+v, want %s/%s", c, status, reason)
		}
		if c.ObservedGeneration != mesh.Generation {
			return fmt.Errorf("IssuerReady observed generation %d, Mesh is at %d", c.ObservedGeneration, mesh.Generation)
		}
		got = c
		return nil
	})
	return got
}

// waitForMeshEvent waits for a Warning Event on the Mesh with reason.
func waitForMeshEvent(t *testing.T, reason string) {
	t.Helper()
	envtest.Eventually(t, wait, func() error {
		var list eventsv1.EventList
		if err := env.Client.List(context.Background(), &list); err != nil {
			return err
		}
		for _, e := range list.Items {
			if e.Regarding.Kind == "Mesh" && e.Regarding.Name == meshv1alpha1.MeshName && e.Reason == reason && e.Type == corev1.EventTypeWarning {
				return nil
			}
		}
		return fmt.Errorf("no Warning Event %s on the Mesh among %d", reason, len(list.Items))
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
		Subject:               pkix.Name{CommonName: "test issuer CA"},
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
	cert, _ := x509.ParseCertificate(der)
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	return &testCA{
		cert:    cert,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
}

// bundleHolds reports whether a PEM bundle contains cert.
func bundleHolds(bundlePEM []byte, cert *x509.Certificate) bool {
	certs, err := pki.ParseCertificatesPEM(bundlePEM)
	if err != nil {
		return false
	}
	for _, c := range certs {
		if bytes.Equal(c.Raw, cert.Raw) {
			return true
		}
	}
	return false
}
