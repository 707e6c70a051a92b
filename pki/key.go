package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
)

// redacted is what a Key prints as, whatever the format.
const redacted = "pki.Key{REDACTED}"

// Key is an ECDSA P-256 private key. It never prints its material: every
// fmt verb (%v, %+v, %#v, %s, %x, ...), String, GoString, JSON, log/slog
// (LogValue) and logr (MarshalLog) give "pki.Key{REDACTED}". The only ways
// out are PEM (for the SDS secret or the root's Secret) and Signer. The zero
// Key and a nil *Key are unusable.
type Key struct {
	priv *ecdsa.PrivateKey
}

// NewKey generates an ECDSA P-256 key.
func NewKey() (*Key, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &Key{priv: priv}, nil
}

// NewKeyAndCSR generates a key and a DER CSR for a workload identity: empty
// subject, the SPIFFE ID as the only (URI) SAN. Put it in
// CertificateRequest{CSR: csr, Identity: id}.
func NewKeyAndCSR(id Identity) (*Key, []byte, error) {
	if err := id.Validate(); err != nil {
		return nil, nil, err
	}
	u, err := url.Parse(id.String())
	if err != nil {
		return nil, nil, err
	}
	return newKeyAndCSR(&x509.CertificateRequest{URIs: []*url.URL{u}})
}

// NewServingKeyAndCSR generates a key and a DER CSR for a TLS serving
// certificate with the given DNS names (the first is also the subject CN).
func NewServingKeyAndCSR(dnsNames []string) (*Key, []byte, error) {
	if len(dnsNames) == 0 {
		return nil, nil, errors.New("no DNS names")
	}
	tmpl := &x509.CertificateRequest{DNSNames: dnsNames}
	tmpl.Subject.CommonName = dnsNames[0]
	return newKeyAndCSR(tmpl)
}

func newKeyAndCSR(tmpl *x509.CertificateRequest) (*Key, []byte, error) {
	k, err := NewKey()
	if err != nil {
		return nil, nil, err
	}
	tmpl.SignatureAlgorithm = x509.ECDSAWithSHA256
	csr, err := x509.CreateCertificateRequest(rand.Reader, tmpl, k.priv)
	if err != nil {
		return nil, nil, err
	}
	return k, csr, nil
}

// ParseKeyPEM parses the first private key block of b (PKCS#8 "PRIVATE KEY"
// or SEC1 "EC PRIVATE KEY"); it must be ECDSA P-256.
func ParseKeyPEM(b []byte) (*Key, error) {
	keys, err := ParseKeysPEM(b)
	if err != nil {
		return nil, err
	}
	return keys[0], nil
}

// ParseKeysPEM parses every private key block of b, in order. Errors never
// include key material.
func ParseKeysPEM(b []byte) ([]*Key, error) {
	var out []*Key
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		var (
			k   any
			err error
		)
		switch blk.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(blk.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parse %s block: %w", blk.Type, err)
		}
		priv, ok := k.(*ecdsa.PrivateKey)
		if !ok || priv.Curve != elliptic.P256() {
			return nil, errors.New("private key is not ECDSA P-256")
		}
		out = append(out, &Key{priv: priv})
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM private key block")
	}
	return out, nil
}

// PEM encodes the key as PKCS#8 ("PRIVATE KEY"), the private_key of the SDS
// TLS secret. The result is secret: never log it.
func (k *Key) PEM() ([]byte, error) {
	if k == nil || k.priv == nil {
		return nil, errors.New("nil key")
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Public is the public key, an *ecdsa.PublicKey.
func (k *Key) Public() crypto.PublicKey { return &k.priv.PublicKey }

// Signer signs with the key (x509.CreateCertificate, TLS). The returned
// Signer redacts itself like Key.
func (k *Key) Signer() crypto.Signer { return keySigner{k} }

// TLSCertificate pairs the key with a certificate chain (leaf first), for a
// tls.Config, e.g. the xDS server's serving certificate.
func (k *Key) TLSCertificate(chainPEM []byte) (tls.Certificate, error) {
	certs, err := ParseCertificatesPEM(chainPEM)
	if err != nil {
		return tls.Certificate{}, err
	}
	pub, ok := certs[0].PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(k.Public()) {
		return tls.Certificate{}, errors.New("certificate does not match the key")
	}
	tc := tls.Certificate{PrivateKey: k.Signer(), Leaf: certs[0]}
	for _, c := range certs {
		tc.Certificate = append(tc.Certificate, c.Raw)
	}
	return tc, nil
}

// Redaction. Value receivers, so both Key and *Key redact.

// Format implements fmt.Formatter: every verb prints "pki.Key{REDACTED}".
func (Key) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// String implements fmt.Stringer.
func (Key) String() string { return redacted }

// GoString implements fmt.GoStringer.
func (Key) GoString() string { return redacted }

// MarshalJSON encodes the key as the string "pki.Key{REDACTED}".
func (Key) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// LogValue implements slog.LogValuer.
func (Key) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalLog implements logr.Marshaler (structurally; this package does not
// import logr).
func (Key) MarshalLog() any { return redacted }

// keySigner is the crypto.Signer of a Key; it redacts like the Key.
type keySigner struct{ k *Key }

func (s keySigner) Public() crypto.PublicKey { return s.k.Public() }

func (s keySigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return s.k.priv.Sign(r, digest, opts)
}

func (keySigner) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }
func (keySigner) String() string             { return redacted }
func (keySigner) GoString() string           { return redacted }
func (keySigner) MarshalJSON() ([]byte, error) {
	return []byte(`"` + redacted + `"`), nil
}
func (keySigner) LogValue() slog.Value { return slog.StringValue(redacted) }
func (keySigner) MarshalLog() any      { return redacted }
