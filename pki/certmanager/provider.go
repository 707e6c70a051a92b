package certmanager

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/pki"
)

// +kubebuilder:rbac:groups=cert-manager.io,namespace=capstan-system,resources=certificaterequests,verbs=create;get;list;watch;delete
// +kubebuilder:rbac:groups=cert-manager.io,namespace=capstan-system,resources=issuers,verbs=get;list;watch
// +kubebuilder:rbac:groups=cert-manager.io,resources=clusterissuers,verbs=get;list;watch

// cert-manager's API group, the default of an issuerRef.
const certManagerGroup = "cert-manager.io"

// DefaultIssueTimeout bounds the wait for a CertificateRequest's approval and issuance.
const DefaultIssueTimeout = 30 * time.Second

// Labels and annotations on Capstan's CertificateRequests.
const (
	labelManagedBy        = "app.kubernetes.io/managed-by"
	labelComponent        = "app.kubernetes.io/component"
	componentCertificate  = "workload-certificate"
	annotationCertSubject = "capstan.dev/certificate-for"
)

// Provider is the pki.Provider for Mesh.spec.certificates.provider
// CertManager: each Sign creates a cert-manager CertificateRequest against
// the issuer, waits (bounded) for approval and issuance, and deletes the
// request. The trust bundle is the issuer's CA as the requests report it
// (status.ca): the latest CA and, after the issuer's CA changed, the one
// before it, so certificates of both keep verifying.
type Provider struct {
	// Client reads and writes cert-manager objects; its scheme must hold
	// cert-manager's types (NewClient).
	Client client.Client
	// Namespace holds the CertificateRequests, and the Issuer when Kind is Issuer.
	Namespace string
	Issuer    meshv1alpha1.IssuerReference
	// Timeout bounds each Sign; DefaultIssueTimeout when zero.
	Timeout time.Duration

	mu               sync.Mutex
	bundle, previous []byte
}

var _ pki.Provider = (*Provider)(nil)

// NewClient returns an uncached client for cert-manager's types.
func NewClient(cfg *rest.Config) (client.Client, error) {
	s := runtime.NewScheme()
	if err := cmapi.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("adding cert-manager kinds: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		return nil, fmt.Errorf("creating the cert-manager client: %w", err)
	}
	return c, nil
}

func (p *Provider) issuerRef() cmmeta.IssuerReference {
	ref := cmmeta.IssuerReference{Name: p.Issuer.Name, Kind: p.Issuer.Kind, Group: p.Issuer.Group}
	if ref.Kind == "" {
		ref.Kind = cmapi.IssuerKind
	}
	if ref.Group == "" {
		ref.Group = certManagerGroup
	}
	return ref
}

func (p *Provider) describeIssuer() string {
	ref := p.issuerRef()
	if ref.Kind == cmapi.ClusterIssuerKind {
		return fmt.Sprintf("%s %s", ref.Kind, ref.Name)
	}
	return fmt.Sprintf("%s %s/%s", ref.Kind, p.Namespace, ref.Name)
}

// Ready implements pki.Provider: the Issuer or ClusterIssuer exists and its
// Ready condition is True. Issuers of other API groups (external issuers)
// are not inspected.
func (p *Provider) Ready(ctx context.Context) error {
	ref := p.issuerRef()
	if ref.Group != certManagerGroup {
		return nil
	}
	var (
		obj    client.Object
		status *cmapi.IssuerStatus
		key    = client.ObjectKey{Name: ref.Name}
	)
	switch ref.Kind {
	case cmapi.ClusterIssuerKind:
		ci := &cmapi.ClusterIssuer{}
		obj, status = ci, &ci.Status
	case cmapi.IssuerKind:
		is := &cmapi.Issuer{}
		obj, status, key.Namespace = is, &is.Status, p.Namespace
	default:
		return fmt.Errorf("%w: unknown issuer kind %q", pki.ErrIssuerNotReady, ref.Kind)
	}
	if err := p.Client.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("%w: %s not found", pki.ErrIssuerNotReady, p.describeIssuer())
		}
		return fmt.Errorf("reading %s: %w", p.describeIssuer(), err)
	}
	for _, c := range status.Conditions {
		if c.Type == cmapi.IssuerConditionReady {
			if c.Status == cmmeta.ConditionTrue {
				return nil
			}
			return fmt.Errorf("%w: %s: %s: %s", pki.ErrIssuerNotReady, p.describeIssuer(), c.Reason, c.Message)
		}
	}
	return fmt.Errorf("%w: %s has no Ready condition yet", pki.ErrIssuerNotReady, p.describeIssuer())
}

// Sign implements pki.Provider.
func (p *Provider) Sign(ctx context.Context, req pki.CertificateRequest) (*pki.Certificate, error) {
	csr, err := req.Check()
	if err != nil {
		return nil, fmt.Errorf("certificate request: %w", err)
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultIssueTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cr := p.newRequest(req)
	if err := p.Client.Create(ctx, cr); err != nil {
		return nil, fmt.Errorf("creating a CertificateRequest for %s: %w", p.describeIssuer(), err)
	}
	defer p.deleteRequest(cr)
	done, err := p.waitForRequest(ctx, cr)
	if err != nil {
		return nil, err
	}
	return p.certificateOf(done, csr)
}

func (p *Provider) newRequest(req pki.CertificateRequest) *cmapi.CertificateRequest {
	usages := []cmapi.KeyUsage{cmapi.UsageDigitalSignature, cmapi.UsageServerAuth}
	subject := strings.Join(req.DNSNames, ",")
	if !req.Identity.IsZero() {
		usages = append(usages, cmapi.UsageClientAuth)
		subject = req.Identity.String()
	}
	return &cmapi.CertificateRequest{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:    p.Namespace,
			GenerateName: "capstan-",
			Labels:       map[string]string{labelManagedBy: "capstan", labelComponent: componentCertificate},
			Annotations:  map[string]string{annotationCertSubject: subject},
		},
		Spec: cmapi.CertificateRequestSpec{
			Request:   req.CSRPEM(),
			IssuerRef: p.issuerRef(),
			Duration:  &metav1.Duration{Duration: req.TTL},
			Usages:    usages,
		},
	}
}

// deleteRequest removes a finished request; it holds no secret (the key
// never leaves the control plane), so a failed delete is only clutter.
func (p *Provider) deleteRequest(cr *cmapi.CertificateRequest) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = client.IgnoreNotFound(p.Client.Delete(ctx, cr))
}

// waitForRequest polls the request until it is issued, denied or failed,
// or ctx ends.
func (p *Provider) waitForRequest(ctx context.Context, cr *cmapi.CertificateRequest) (*cmapi.CertificateRequest, error) {
	interval := 20 * time.Millisecond
	key := client.ObjectKeyFromObject(cr)
	for {
		cur := &cmapi.CertificateRequest{}
		if err := p.Client.Get(ctx, key, cur); err != nil {
			if ctx.Err() != nil {
				return nil, p.timeoutError(cr, cur)
			}
			return nil, fmt.Errorf("reading CertificateRequest %s: %w", key, err)
		}
		if done, err := requestOutcome(cur); done {
			if err != nil {
				return nil, fmt.Errorf("CertificateRequest %s (%s): %w", key, p.describeIssuer(), err)
			}
			return cur, nil
		}
		select {
		case <-ctx.Done():
			return nil, p.timeoutError(cr, cur)
		case <-time.After(interval):
		}
		interval = min(2*interval, time.Second)
	}
}

// timeoutError says why a request took too long: a not-ready issuer is the
// usual reason, so it is checked.
func (p *Provider) timeoutError(cr, cur *cmapi.CertificateRequest) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Ready(ctx); err != nil {
		return fmt.Errorf("CertificateRequest %s/%s not issued in time: %w", cr.Namespace, cr.Name, err)
	}
	state := "not approved"
	if condition(cur, cmapi.CertificateRequestConditionApproved) != nil {
		state = "approved but not issued"
	}
	return fmt.Errorf("CertificateRequest %s/%s %s within the timeout", cr.Namespace, cr.Name, state)
}

// requestOutcome reports whether a request is finished, and its error.
func requestOutcome(cr *cmapi.CertificateRequest) (bool, error) {
	if c := condition(cr, cmapi.CertificateRequestConditionDenied); c != nil {
		return true, fmt.Errorf("%w: %s: %s", pki.ErrRequestDenied, c.Reason, c.Message)
	}
	if c := condition(cr, cmapi.CertificateRequestConditionInvalidRequest); c != nil {
		return true, fmt.Errorf("invalid request: %s: %s", c.Reason, c.Message)
	}
	for _, c := range cr.Status.Conditions {
		if c.Type != cmapi.CertificateRequestConditionReady {
			continue
		}
		switch {
		case c.Status == cmmeta.ConditionTrue && len(cr.Status.Certificate) > 0:
			return true, nil
		case c.Reason == cmapi.CertificateRequestReasonFailed:
			return true, fmt.Errorf("issuance failed: %s", c.Message)
		case c.Reason == cmapi.CertificateRequestReasonDenied:
			return true, fmt.Errorf("%w: %s", pki.ErrRequestDenied, c.Message)
		}
	}
	return false, nil
}

// condition returns a request's condition of type t when it is True.
func condition(cr *cmapi.CertificateRequest, t cmapi.CertificateRequestConditionType) *cmapi.CertificateRequestCondition {
	for i, c := range cr.Status.Conditions {
		if c.Type == t && c.Status == cmmeta.ConditionTrue {
			return &cr.Status.Conditions[i]
		}
	}
	return nil
}

// certificateOf checks what the issuer returned (the leaf certifies the
// CSR's key and carries exactly its names), drops a root from the chain and
// remembers the CA for the trust bundle.
func (p *Provider) certificateOf(cr *cmapi.CertificateRequest, csr *x509.CertificateRequest) (*pki.Certificate, error) {
	certs, err := pki.ParseCertificatesPEM(cr.Status.Certificate)
	if err != nil {
		return nil, fmt.Errorf("CertificateRequest %s/%s: certificate: %w", cr.Namespace, cr.Name, err)
	}
	leaf := certs[0]
	if err := leafMatchesCSR(leaf, csr); err != nil {
		return nil, fmt.Errorf("CertificateRequest %s/%s: %w", cr.Namespace, cr.Name, err)
	}
	for len(certs) > 1 && isSelfSigned(certs[len(certs)-1]) {
		certs = certs[:len(certs)-1]
	}
	ca := cr.Status.CA
	if len(ca) == 0 {
		return nil, fmt.Errorf("CertificateRequest %s/%s: %s reports no CA (status.ca), which the trust bundle needs", cr.Namespace, cr.Name, p.describeIssuer())
	}
	if _, err := pki.ParseCertificatesPEM(ca); err != nil {
		return nil, fmt.Errorf("CertificateRequest %s/%s: status.ca: %w", cr.Namespace, cr.Name, err)
	}
	p.rememberCA(ca)
	return &pki.Certificate{ChainPEM: pki.EncodeCertificatesPEM(certs...), NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter}, nil
}

func leafMatchesCSR(leaf *x509.Certificate, csr *x509.CertificateRequest) error {
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(csr.PublicKey) {
		return errors.New("the issued certificate is not for the requested key")
	}
	if len(leaf.URIs) != len(csr.URIs) || len(leaf.DNSNames) != len(csr.DNSNames) || len(leaf.IPAddresses) > 0 || len(leaf.EmailAddresses) > 0 {
		return fmt.Errorf("the issued certificate names %v %v, requested %v %v", leaf.URIs, leaf.DNSNames, csr.URIs, csr.DNSNames)
	}
	for i, u := range csr.URIs {
		if leaf.URIs[i].String() != u.String() {
			return fmt.Errorf("the issued certificate's URI %s, requested %s", leaf.URIs[i], u)
		}
	}
	return nil
}

func isSelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

func (p *Provider) rememberCA(ca []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if bytes.Equal(ca, p.bundle) {
		return
	}
	p.previous, p.bundle = p.bundle, bytes.Clone(ca)
}

// TrustBundle implements pki.Provider: the issuer's CA from the latest
// request and, if it changed, the CA before it; expired roots are left out.
func (p *Provider) TrustBundle(context.Context) ([]byte, error) {
	p.mu.Lock()
	cur, prev := p.bundle, p.previous
	p.mu.Unlock()
	if len(cur) == 0 {
		return nil, fmt.Errorf("no certificate issued by %s yet, so its CA is unknown", p.describeIssuer())
	}
	return pki.MergeBundles(time.Now(), cur, prev)
}
