package pki

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
)

// RootFingerprints returns the SHA-256 fingerprints (lowercase hex of the
// DER) of the certificates in a PEM bundle, sorted and without duplicates.
func RootFingerprints(bundlePEM []byte) ([]string, error) {
	certs, err := ParseCertificatesPEM(bundlePEM)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(certs))
	for _, c := range certs {
		sum := sha256.Sum256(c.Raw)
		out = append(out, hex.EncodeToString(sum[:]))
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// JoinFingerprints is the list form of fingerprints that the root CA
// ConfigMap publishes and proxies report: comma-separated.
func JoinFingerprints(fps []string) string { return strings.Join(fps, ",") }

// SplitFingerprints parses JoinFingerprints' form; anything that is not a
// list of SHA-256 hex fingerprints (an unexpanded variable, for one) gives
// nil, which callers treat as "roots unknown".
func SplitFingerprints(s string) []string {
	if s == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	for _, p := range parts {
		if len(p) != 2*sha256.Size {
			return nil
		}
		if _, err := hex.DecodeString(p); err != nil {
			return nil
		}
	}
	return parts
}

// CoversFingerprints reports whether have holds every fingerprint of want.
func CoversFingerprints(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}
