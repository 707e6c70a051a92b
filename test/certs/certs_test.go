package certs

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/controllers/certificates"
	"github.com/capstanmesh/capstan/pki"
	"github.com/capstanmesh/capstan/pki/certmanager"
	"github.com/capstanmesh/capstan/test/envtest"
	"github.com/capstanmesh/capstan/test/xdsclient"
	"github.com/capstanmesh/capstan/xds/generate"
)

// TestBuiltInCA: with the default Mesh (built-in CA) each proxy gets its own
// identity's certificate over SDS, signed by the root kept in the operator's
// namespace, and a new one on the same stream before the old one expires,
// with no listener or cluster update.
func TestBuiltInCA(t *testing.T) {
	setMesh(t, meshv1alpha1.MeshSpec{})
	op := startOperator(t, shortTTL)
	a := newWorkload(t, op.ns, "sa-a", "a", "10.4.0.1")
	b := newWorkload(t, op.ns, "sa-b", "b", "10.4.0.2")
	ca, cb := a.connect(t, op), b.connect(t, op)

	gotB := waitForCert(t, cb, b.spiffeID(), nil)
	first, second := checkRotation(t, ca, a, b)
	if string(first.keyPEM) == string(gotB.keyPEM) || string(second.keyPEM) == string(gotB.keyPEM) {
		t.Error("proxies of two identities hold the same key")
	}
	root := &corev1.Secret{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: operatorNamespace, Name: certificates.DefaultRootSecretName}, root); err != nil {
		t.Fatalf("the built-in CA's Secret: %v", err)
	}
	roots, err := pki.ParseCertificatesPEM(root.Data[certificates.RootSecretCertKey])
	if err != nil || !bundleHolds(first.bundlePEM, roots[0]) {
		t.Errorf("ROOTCA does not hold the stored root (%v)", err)
	}
	waitForIssuerCondition(t, metav1.ConditionTrue, meshv1alpha1.ReasonIssuerReady)
}

// TestCertManagerCA: a Mesh naming a cert-manager CA Issuer gets workload
// certificates signed by that CA, through real CertificateRequests that are
// cleaned up, and rotation works as with the built-in CA.
func TestCertManagerCA(t *testing.T) {
	issuerCA := newTestCA(t)
	createCAIssuer(t, "mesh-ca", issuerCA)
	setMesh(t, certManagerMesh("mesh-ca", ""))
	op := startOperator(t, shortTTL)
	a := newWorkload(t, op.ns, "sa-a", "a", "10.5.0.1")
	b := newWorkload(t, op.ns, "sa-b", "b", "10.5.0.2")
	ca, cb := a.connect(t, op), b.connect(t, op)

	gotB := waitForCert(t, cb, b.spiffeID(), nil)
	first, second := checkRotation(t, ca, a, b)
	for _, r := range []*received{first, second, gotB} {
		if string(r.bundlePEM) != string(issuerCA.certPEM) {
			t.Errorf("ROOTCA is not exactly the issuer's CA:\n%s", r.bundlePEM)
		}
		if err := r.leaf.CheckSignatureFrom(issuerCA.cert); err != nil {
			t.Errorf("certificate not signed by the issuer's CA: %v", err)
		}
	}
	waitForIssuerCondition(t, metav1.ConditionTrue, meshv1alpha1.ReasonIssuerReady)
	// Requests are deleted once used; with renewals every few seconds a
	// moment with none in flight comes soon.
	cm := certManagerClient(t)
	envtest.Eventually(t, wait, func() error {
		var list cmapi.CertificateRequestList
		if err := cm.List(context.Background(), &list, client.InNamespace(operatorNamespace)); err != nil {
			return err
		}
		if len(list.Items) > 0 {
			return fmt.Errorf("%d CertificateRequests left", len(list.Items))
		}
		return nil
	})
	if _, err := op.certs.GetCertificate(nil); err != nil {
		t.Errorf("serving certificate: %v", err)
	}
}

// TestIssuerFailures: an Issuer that stops being ready, then a Mesh whose
// requests are denied: the Mesh's IssuerReady condition and a Warning Event
// say so, and the proxy keeps the certificate it has.
func TestIssuerFailures(t *testing.T) {
	issuerCA := newTestCA(t)
	createCAIssuer(t, "flaky-ca", issuerCA)
	setMesh(t, certManagerMesh("flaky-ca", ""))
	op := startOperator(t, shortTTL)
	a := newWorkload(t, op.ns, "sa-a", "a", "10.6.0.1")
	c := a.connect(t, op)
	waitForCert(t, c, a.spiffeID(), nil)

	breakIssuer(t, "flaky-ca")
	held := waitForCert(t, c, a.spiffeID(), nil)
	waitForIssuerCondition(t, metav1.ConditionFalse, meshv1alpha1.ReasonIssuerNotReady)
	waitForMeshEvent(t, meshv1alpha1.ReasonIssuerNotReady)
	checkStillHolds(t, c, held)

	// The approval policy denies requests for issuers of deniedGroup.
	setMesh(t, certManagerMesh("external", deniedGroup))
	waitForIssuerCondition(t, metav1.ConditionFalse, meshv1alpha1.ReasonRequestDenied)
	waitForMeshEvent(t, meshv1alpha1.ReasonRequestDenied)
	checkStillHolds(t, c, held)
}

// checkRotation waits for w's certificate, then for its renewal on the
// same stream, and checks that the renewal changed no listener or cluster,
// came before the old certificate expired, and that both verify against
// the bundle. other's service must be in w's clusters before counting.
func checkRotation(t *testing.T, c *xdsclient.Delta, w, other *workload) (first, second *received) {
	t.Helper()
	otherCluster := fmt.Sprintf("outbound|80||%s.%s.svc.cluster.local", other.pod.Name, other.ns)
	c.WaitFor(t, wait, func(s xdsclient.State) error {
		if s[resourcev3.ClusterType][otherCluster] == nil || len(s[resourcev3.ListenerType]) == 0 {
			return fmt.Errorf("no cluster %s or no listeners yet", otherCluster)
		}
		return nil
	})
	first = waitForCert(t, c, w.spiffeID(), nil)
	lds, cds := countResponses(c, resourcev3.ListenerType), countResponses(c, resourcev3.ClusterType)
	second = waitForCert(t, c, w.spiffeID(), func(r *received) error {
		if r.leaf.SerialNumber.Cmp(first.leaf.SerialNumber) == 0 {
			return fmt.Errorf("certificate %s not renewed yet", r.leaf.SerialNumber)
		}
		return nil
	})
	now := time.Now()
	if !now.Before(first.leaf.NotAfter) {
		t.Errorf("the renewed certificate arrived at %v, after the old one expired at %v", now, first.leaf.NotAfter)
	}
	if err := pki.VerifyWorkloadCert(first.chainPEM, second.bundlePEM, w.spiffeID(), now); err != nil {
		t.Errorf("the old certificate does not verify against the bundle: %v", err)
	}
	if err := c.Err(); err != nil {
		t.Fatalf("the stream ended: %v", err)
	}
	if n, m := countResponses(c, resourcev3.ListenerType), countResponses(c, resourcev3.ClusterType); n != lds || m != cds {
		t.Errorf("rotation sent listeners %d→%d and clusters %d→%d responses, want none", lds, n, cds, m)
	}
	return first, second
}

// checkStillHolds: the client's workload certificate is still held.
func checkStillHolds(t *testing.T, c *xdsclient.Delta, held *received) {
	t.Helper()
	r, err := secretsOf(c.Snapshot())
	if err != nil {
		t.Fatalf("the proxy lost its secrets: %v", err)
	}
	if r.leaf.SerialNumber.Cmp(held.leaf.SerialNumber) != 0 {
		t.Errorf("the proxy's certificate changed from %s to %s while the issuer failed", held.leaf.SerialNumber, r.leaf.SerialNumber)
	}
	for _, resp := range c.Responses() {
		for _, name := range resp.Removed {
			if resp.TypeURL == resourcev3.SecretType {
				t.Errorf("secret %s was removed", name)
			}
		}
	}
}

func certManagerClient(t *testing.T) client.Client {
	t.Helper()
	c, err := certmanager.NewClient(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// createCAIssuer creates a CA Issuer in the operator's namespace backed by
// ca, waits until cert-manager reports it ready, and deletes it when t ends.
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
	cm := certManagerClient(t)
	issuer := &cmapi.Issuer{
		ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: name},
		Spec:       cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{CA: &cmapi.CAIssuer{SecretName: name}}},
	}
	if err := cm.Create(ctx, issuer); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cm.Delete(context.Background(), issuer)
		_ = env.Client.Delete(context.Background(), sec)
	})
	waitForIssuer(t, cm, name, cmmeta.ConditionTrue)
}

func waitForIssuer(t *testing.T, cm client.Client, name string, want cmmeta.ConditionStatus) {
	t.Helper()
	envtest.Eventually(t, wait, func() error {
		is := &cmapi.Issuer{}
		if err := cm.Get(context.Background(), client.ObjectKey{Namespace: operatorNamespace, Name: name}, is); err != nil {
			return err
		}
		for _, c := range is.Status.Conditions {
			if c.Type == cmapi.IssuerConditionReady && c.Status == want {
				return nil
			}
		}
		return fmt.Errorf("issuer %s: conditions %+v, want Ready %s", name, is.Status.Conditions, want)
	})
}

// breakIssuer points the Issuer at a Secret that does not exist and waits
// until cert-manager reports it not ready.
func breakIssuer(t *testing.T, name string) {
	t.Helper()
	cm := certManagerClient(t)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		is := &cmapi.Issuer{}
		if err := cm.Get(context.Background(), client.ObjectKey{Namespace: operatorNamespace, Name: name}, is); err != nil {
			return err
		}
		is.Spec.CA.SecretName = "no-such-secret"
		return cm.Update(context.Background(), is)
	})
	if err != nil {
		t.Fatal(err)
	}
	waitForIssuer(t, cm, name, cmmeta.ConditionFalse)
}

// deniedGroup is the API group of issuers whose requests the approval
// policy denies.
const deniedGroup = "denied.example.com"

// runApprovalPolicy approves every pending CertificateRequest for
// cert-manager's issuers and denies those for issuers of deniedGroup, until
// ctx is done.
func runApprovalPolicy(ctx context.Context) (<-chan struct{}, error) {
	cm, err := certmanager.NewClient(env.Config)
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			var list cmapi.CertificateRequestList
			if err := cm.List(ctx, &list); err != nil {
				continue
			}
			for i := range list.Items {
				decide(ctx, cm, &list.Items[i])
			}
		}
	}()
	return done, nil
}

func decide(ctx context.Context, cm client.Client, cr *cmapi.CertificateRequest) {
	for _, c := range cr.Status.Conditions {
		if c.Type == cmapi.CertificateRequestConditionApproved || c.Type == cmapi.CertificateRequestConditionDenied {
			return
		}
	}
	cond := cmapi.CertificateRequestCondition{
		Type: cmapi.CertificateRequestConditionApproved, Status: cmmeta.ConditionTrue,
		Reason: "TestPolicy", Message: "approved by the test's approval policy",
	}
	if cr.Spec.IssuerRef.Group == deniedGroup {
		cond.Type, cond.Message = cmapi.CertificateRequestConditionDenied, "denied by the test's approval policy"
	}
	cr.Status.Conditions = append(cr.Status.Conditions, cond)
	_ = cm.Status().Update(ctx, cr) // a conflict is retried on the next tick
}

// TestRefusedStreamsGetNoSecret: while identity A's proxy holds its
// certificate, a stream naming A's node with B's token, or with no token,
// is refused with PermissionDenied and receives nothing, secrets included.
func TestRefusedStreamsGetNoSecret(t *testing.T) {
	setMesh(t, meshv1alpha1.MeshSpec{})
	op := startOperator(t, time.Hour)
	a := newWorkload(t, op.ns, "sa-a", "a", "10.7.0.1")
	b := newWorkload(t, op.ns, "sa-b", "b", "10.7.0.2")
	waitForCert(t, a.connect(t, op), a.spiffeID(), nil)

	for name, opts := range map[string][]grpc.DialOption{
		"B's token": {xdsclient.WithBearerToken(b.token(t))},
		"no token":  nil,
	} {
		c := xdsclient.DialDeltaWith(t, op.addr, a.nodeID, opts...)
		_ = c.TrySubscribe(resourcev3.SecretType, generate.SecretWorkloadCert, generate.SecretRootCA)
		var err error
		envtest.Eventually(t, wait, func() error {
			if err = c.Err(); err == nil {
				return errors.New("stream still open")
			}
			return nil
		})
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s: stream ended with %v, want PermissionDenied", name, err)
		}
		if r := c.Responses(); len(r) != 0 {
			t.Errorf("%s: refused stream received %d responses", name, len(r))
		}
	}
}
