package generate

import (
	"bytes"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// IdentitySecrets is the key material of one workload identity, PEM-encoded:
// what the SDS secrets SecretWorkloadCert and SecretRootCA carry. KeyPEM is a
// private key: never log it or write it anywhere but into the proxy's own
// snapshot.
type IdentitySecrets struct {
	// ChainPEM is the workload certificate followed by any intermediates.
	ChainPEM []byte
	// KeyPEM is the certificate's private key.
	KeyPEM []byte
	// BundlePEM holds the trusted roots.
	BundlePEM []byte
}

// String never prints the key.
func (s IdentitySecrets) String() string {
	return fmt.Sprintf("IdentitySecrets{chain %d bytes, key REDACTED, bundle %d bytes}", len(s.ChainPEM), len(s.BundlePEM))
}

// GoString never prints the key.
func (s IdentitySecrets) GoString() string { return s.String() }

// Secrets returns the two SDS secrets of an identity, sorted by name:
// SecretWorkloadCert (tls_certificate with the chain and the key inline) and
// SecretRootCA (validation_context with the bundle as trusted_ca). It checks
// that each input is non-empty PEM of the right block types, and validates
// the secrets; it does not parse the certificates (pki does, before).
func Secrets(in IdentitySecrets) ([]*tlsv3.Secret, error) {
	if err := in.check(); err != nil {
		return nil, err
	}
	out := []*tlsv3.Secret{
		{
			Name: SecretRootCA,
			Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				TrustedCa: inlineBytes(in.BundlePEM),
			}},
		},
		{
			Name: SecretWorkloadCert,
			Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
				CertificateChain: inlineBytes(in.ChainPEM),
				PrivateKey:       inlineBytes(in.KeyPEM),
			}},
		},
	}
	for _, s := range out {
		if err := s.ValidateAll(); err != nil {
			return nil, fmt.Errorf("secret %q: %w", s.GetName(), err)
		}
	}
	return out, nil
}

func inlineBytes(b []byte) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: bytes.Clone(b)}}
}

// check verifies the PEM framing: every block of the expected types, at
// least one, nothing else but whitespace.
func (s IdentitySecrets) check() error {
	if err := checkPEM(s.ChainPEM, "CERTIFICATE"); err != nil {
		return fmt.Errorf("certificate chain: %w", err)
	}
	if err := checkPEM(s.KeyPEM, "PRIVATE KEY", "EC PRIVATE KEY"); err != nil {
		// Never quote the key's bytes.
		return errors.New("private key: not a single PEM private key block")
	}
	if n := countPEM(s.KeyPEM); n != 1 {
		return fmt.Errorf("private key: %d PEM blocks, want 1", n)
	}
	if err := checkPEM(s.BundlePEM, "CERTIFICATE"); err != nil {
		return fmt.Errorf("trust bundle: %w", err)
	}
	return nil
}

func checkPEM(b []byte, types ...string) error {
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if !slices.Contains(types, blk.Type) {
			return fmt.Errorf("PEM block %q, want %v", blk.Type, types)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("no PEM %v block", types)
	}
	if len(bytes.TrimSpace(b)) > 0 {
		return errors.New("trailing data after the PEM blocks")
	}
	return nil
}

func countPEM(b []byte) int {
	n := 0
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			return n
		}
		n++
	}
}

// NeedsSecrets reports whether resources reference the SDS secrets: some
// listener filter chain or cluster has a TLS transport socket. Every TLS
// context this package generates takes its certificate and roots from SDS,
// so a proxy whose config says true must not get that config before its
// secrets (Envoy would keep those listeners and clusters warming).
func NeedsSecrets(res map[string][]types.Resource) bool {
	for _, r := range res[resource.ListenerType] {
		if l, ok := r.(*listenerv3.Listener); ok && listenerUsesTLS(l) {
			return true
		}
	}
	for _, r := range res[resource.ClusterType] {
		if c, ok := r.(*clusterv3.Cluster); ok && clusterUsesTLS(c) {
			return true
		}
	}
	return false
}

func listenerUsesTLS(l *listenerv3.Listener) bool {
	if isTLS(l.GetDefaultFilterChain().GetTransportSocket()) {
		return true
	}
	for _, fc := range l.GetFilterChains() {
		if isTLS(fc.GetTransportSocket()) {
			return true
		}
	}
	return false
}

func clusterUsesTLS(c *clusterv3.Cluster) bool {
	if isTLS(c.GetTransportSocket()) {
		return true
	}
	for _, m := range c.GetTransportSocketMatches() {
		if isTLS(m.GetTransportSocket()) {
			return true
		}
	}
	return false
}

func isTLS(ts *corev3.TransportSocket) bool {
	return ts != nil && ts.GetName() == transportSocketTLS
}
