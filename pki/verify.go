package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"
)

// VerifyWorkloadCert checks a workload certificate chain (leaf first, as in
// Certificate.ChainPEM) against a trust bundle at time now: the leaf is not a
// CA, chains to one of the bundle's roots through the chain's other
// certificates, is valid for both TLS server and client authentication, and
// has exactly one URI SAN, equal to wantID, and no other SANs.
func VerifyWorkloadCert(chainPEM, bundlePEM []byte, wantID string, now time.Time) error {
	chain, err := ParseCertificatesPEM(chainPEM)
	if err != nil {
		return fmt.Errorf("chain: %w", err)
	}
	roots, err := ParseCertificatesPEM(bundlePEM)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	leaf := chain[0]
	if leaf.IsCA {
		return errors.New("leaf is a CA certificate")
	}
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != wantID {
		return fmt.Errorf("URI SANs %v, want exactly %s", leaf.URIs, wantID)
	}
	if len(leaf.DNSNames) > 0 || len(leaf.IPAddresses) > 0 || len(leaf.EmailAddresses) > 0 {
		return errors.New("leaf has DNS, IP or e-mail SANs")
	}
	for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if !slices.Contains(leaf.ExtKeyUsage, u) {
			return fmt.Errorf("leaf lacks extended key usage %v", u)
		}
	}
	opts := x509.VerifyOptions{
		Roots:         x509.NewCertPool(),
		Intermediates: x509.NewCertPool(),
		CurrentTime:   now,
	}
	for _, r := range roots {
		opts.Roots.AddCert(r)
	}
	for _, c := range chain[1:] {
		opts.Intermediates.AddCert(c)
	}
	// Verify accepts any one of KeyUsages, so check each on its own: every
	// certificate in the chain must allow both.
	for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		opts.KeyUsages = []x509.ExtKeyUsage{u}
		if _, err := leaf.Verify(opts); err != nil {
			return err
		}
	}
	return nil
}
