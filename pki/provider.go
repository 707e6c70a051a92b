package pki

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Provider signs certificates for workload identities and for the xDS
// server, and publishes the roots that peers verify them against.
// Implementations must be safe for concurrent use.
type Provider interface {
	// Sign issues a certificate for the CSR in req. The certificate's names
	// come from req (Identity or DNSNames), which the CSR must carry exactly
	// (see CertificateRequest.Check); the lifetime is req.TTL or less if the
	// issuer caps it (Certificate.NotAfter tells).
	Sign(ctx context.Context, req CertificateRequest) (*Certificate, error)
	// TrustBundle returns the PEM-encoded root certificates that certificates
	// from Sign chain to: all roots that are currently trusted, so during a
	// root rotation both the old and the new root.
	TrustBundle(ctx context.Context) ([]byte, error)
	// Ready returns nil when Sign can be expected to succeed, and otherwise
	// an error saying why not (no root yet, issuer not ready, ...).
	Ready(ctx context.Context) error
}

// CertificateRequest asks a Provider for a certificate. Exactly one of
// Identity (a workload certificate, usable as TLS client and server) and
// DNSNames (a serving certificate, TLS server only) is set.
type CertificateRequest struct {
	// CSR is a DER-encoded PKCS#10 request, signed with the key the
	// certificate will certify (NewKeyAndCSR, NewServingKeyAndCSR). Its
	// names must equal Identity or DNSNames.
	CSR []byte
	// Identity is the workload identity; the certificate's only SAN is its
	// SPIFFE ID (a URI).
	Identity Identity
	// DNSNames are the names of a serving certificate.
	DNSNames []string
	// TTL is the requested lifetime.
	TTL time.Duration
}

// CSRPEM is the CSR as a PEM "CERTIFICATE REQUEST" block, the form
// cert-manager's CertificateRequest.spec.request takes.
func (r CertificateRequest) CSRPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: r.CSR})
}

// Check validates the request and returns its parsed CSR: a positive TTL;
// exactly one of a valid Identity or non-empty DNSNames; a CSR whose
// signature verifies, whose key is ECDSA P-256, and whose SANs are exactly
// the requested ones (the SPIFFE URI, or the DNS names in any order) with no
// IP or e-mail SANs. Providers call it before signing, so a CSR can never
// widen what the control plane asked for.
func (r CertificateRequest) Check() (*x509.CertificateRequest, error) {
	if r.TTL <= 0 {
		return nil, fmt.Errorf("TTL %v is not positive", r.TTL)
	}
	hasID, hasDNS := !r.Identity.IsZero(), len(r.DNSNames) > 0
	if hasID == hasDNS {
		return nil, errors.New("exactly one of Identity and DNSNames must be set")
	}
	csr, err := x509.ParseCertificateRequest(r.CSR)
	if err != nil {
		return nil, fmt.Errorf("parse CSR: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("CSR signature: %w", err)
	}
	pub, ok := csr.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, errors.New("CSR key is not ECDSA P-256")
	}
	if len(csr.IPAddresses) > 0 || len(csr.EmailAddresses) > 0 {
		return nil, errors.New("CSR has IP or e-mail SANs")
	}
	if hasID {
		if err := r.Identity.Validate(); err != nil {
			return nil, fmt.Errorf("identity: %w", err)
		}
		want := r.Identity.String()
		if len(csr.DNSNames) > 0 || len(csr.URIs) != 1 || csr.URIs[0].String() != want {
			return nil, fmt.Errorf("CSR names %v %v, want only URI %s", csr.URIs, csr.DNSNames, want)
		}
		return csr, nil
	}
	for _, n := range r.DNSNames {
		if n == "" {
			return nil, errors.New("empty DNS name")
		}
	}
	got, want := slices.Sorted(slices.Values(csr.DNSNames)), slices.Sorted(slices.Values(r.DNSNames))
	if len(csr.URIs) > 0 || !slices.Equal(got, want) {
		return nil, fmt.Errorf("CSR names %v %v, want only DNS %v", csr.URIs, csr.DNSNames, r.DNSNames)
	}
	return csr, nil
}

// Certificate is a signed certificate.
type Certificate struct {
	// ChainPEM is the leaf certificate followed by any intermediates, PEM
	// encoded; the root is not included (it is in the trust bundle). This is
	// the certificate_chain of the SDS TLS secret.
	ChainPEM []byte
	// NotBefore and NotAfter are the leaf's validity period.
	NotBefore, NotAfter time.Time
}

// ParseCertificatesPEM parses every CERTIFICATE block of b, in order, and
// ignores other blocks. It fails if there is none.
func ParseCertificatesPEM(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return out, nil
}

// EncodeCertificatesPEM PEM-encodes certificates as CERTIFICATE blocks.
func EncodeCertificatesPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}
