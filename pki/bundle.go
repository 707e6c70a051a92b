package pki

import (
	"crypto/x509"
	"errors"
	"time"
)

// MergeBundles concatenates PEM bundles, without duplicates or expired certificates.
func MergeBundles(now time.Time, bundles ...[]byte) ([]byte, error) {
	var out []*x509.Certificate
	seen := map[string]bool{}
	for _, b := range bundles {
		if len(b) == 0 {
			continue
		}
		certs, err := ParseCertificatesPEM(b)
		if err != nil {
			return nil, err
		}
		for _, c := range certs {
			if seen[string(c.Raw)] || now.After(c.NotAfter) {
				continue
			}
			seen[string(c.Raw)] = true
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no unexpired root in the trust bundle")
	}
	return EncodeCertificatesPEM(out...), nil
}
