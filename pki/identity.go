package pki

import (
	"errors"
	"fmt"
	"strings"
)

// Limits from the SPIFFE ID specification.
const (
	maxSpiffeIDLength    = 2048
	maxTrustDomainLength = 255
	spiffeScheme         = "spiffe://"
)

// Identity is a Kubernetes workload identity:
// spiffe://<TrustDomain>/ns/<Namespace>/sa/<ServiceAccount>.
type Identity struct {
	TrustDomain    string
	Namespace      string
	ServiceAccount string
}

// SpiffeID builds spiffe://<trustDomain>/ns/<ns>/sa/<sa>. It does not
// validate; use Identity.Validate or ParseSpiffeID for untrusted input. It
// formats exactly like ir.SpiffeID.
func SpiffeID(trustDomain, ns, sa string) string {
	return spiffeScheme + trustDomain + "/ns/" + ns + "/sa/" + sa
}

// String is the SPIFFE ID of the identity.
func (i Identity) String() string { return SpiffeID(i.TrustDomain, i.Namespace, i.ServiceAccount) }

// IsZero reports whether all fields are empty.
func (i Identity) IsZero() bool { return i == Identity{} }

// Validate checks the trust domain against the SPIFFE rules, the namespace as
// a DNS-1123 label and the ServiceAccount as a DNS-1123 subdomain (the names
// Kubernetes allows, all of them valid SPIFFE path segments), and the length
// of the whole ID.
func (i Identity) Validate() error {
	if err := ValidateTrustDomain(i.TrustDomain); err != nil {
		return err
	}
	if err := validateLabel(i.Namespace); err != nil {
		return fmt.Errorf("namespace %q: %w", i.Namespace, err)
	}
	if err := validateSubdomain(i.ServiceAccount); err != nil {
		return fmt.Errorf("service account %q: %w", i.ServiceAccount, err)
	}
	if n := len(i.String()); n > maxSpiffeIDLength {
		return fmt.Errorf("SPIFFE ID is %d bytes, more than %d", n, maxSpiffeIDLength)
	}
	return nil
}

// ValidateTrustDomain checks a SPIFFE trust domain: 1 to 255 characters of
// lowercase letters, digits, '.', '-' and '_' (so no scheme, port, userinfo
// or upper case).
func ValidateTrustDomain(td string) error {
	if td == "" {
		return errors.New("trust domain is empty")
	}
	if len(td) > maxTrustDomainLength {
		return fmt.Errorf("trust domain is %d characters, more than %d", len(td), maxTrustDomainLength)
	}
	for i := 0; i < len(td); i++ {
		c := td[i]
		if !isTrustDomainChar(c) {
			return fmt.Errorf("trust domain %q: character %q is not allowed (lowercase letters, digits, '.', '-', '_')", td, c)
		}
	}
	return nil
}

// ParseSpiffeID parses spiffe://<td>/ns/<ns>/sa/<sa>. It applies the SPIFFE
// rules (lowercase "spiffe" scheme, trust domain characters, path segments
// non-empty, not "." or "..", of letters, digits, '.', '-', '_'; no query,
// fragment, port, userinfo or percent-encoding; at most 2048 bytes) and then
// requires the Kubernetes path shape checked by Identity.Validate.
func ParseSpiffeID(s string) (Identity, error) {
	if len(s) > maxSpiffeIDLength {
		return Identity{}, fmt.Errorf("SPIFFE ID is %d bytes, more than %d", len(s), maxSpiffeIDLength)
	}
	rest, ok := strings.CutPrefix(s, spiffeScheme)
	if !ok {
		return Identity{}, fmt.Errorf("%q: not a SPIFFE ID (want scheme %q)", s, spiffeScheme)
	}
	td, path, _ := strings.Cut(rest, "/")
	if err := ValidateTrustDomain(td); err != nil {
		return Identity{}, fmt.Errorf("%q: %w", s, err)
	}
	segs := strings.Split(path, "/")
	for _, seg := range segs {
		if err := validatePathSegment(seg); err != nil {
			return Identity{}, fmt.Errorf("%q: path: %w", s, err)
		}
	}
	if len(segs) != 4 || segs[0] != "ns" || segs[2] != "sa" {
		return Identity{}, fmt.Errorf("%q: path is not /ns/<namespace>/sa/<serviceaccount>", s)
	}
	id := Identity{TrustDomain: td, Namespace: segs[1], ServiceAccount: segs[3]}
	if err := id.Validate(); err != nil {
		return Identity{}, fmt.Errorf("%q: %w", s, err)
	}
	return id, nil
}

func validatePathSegment(seg string) error {
	switch seg {
	case "":
		return errors.New("empty segment (or trailing or repeated '/')")
	case ".", "..":
		return fmt.Errorf("segment %q is not allowed", seg)
	}
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if !isTrustDomainChar(c) && (c < 'A' || c > 'Z') {
			return fmt.Errorf("segment %q: character %q is not allowed", seg, c)
		}
	}
	return nil
}

// isTrustDomainChar reports whether c may appear in a trust domain: a
// lowercase letter, digit, '.', '-' or '_'. Path segments also allow upper
// case.
func isTrustDomainChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_'
}

// validateLabel checks a DNS-1123 label (a namespace name).
func validateLabel(s string) error {
	if s == "" || len(s) > 63 {
		return errors.New("must be 1 to 63 characters")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (c != '-' || i == 0 || i == len(s)-1) {
			return errors.New("must be lowercase letters, digits and inner '-'")
		}
	}
	return nil
}

// validateSubdomain checks a DNS-1123 subdomain (a ServiceAccount name).
func validateSubdomain(s string) error {
	if s == "" || len(s) > 253 {
		return errors.New("must be 1 to 253 characters")
	}
	for _, l := range strings.Split(s, ".") {
		if err := validateLabel(l); err != nil {
			return errors.New("must be dot-separated DNS labels of lowercase letters, digits and inner '-'")
		}
	}
	return nil
}
