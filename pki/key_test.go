package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestKeyRedaction(t *testing.T) {
	k, _, err := NewKeyAndCSR(Identity{"cluster.local", "default", "web"})
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := k.PEM()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := k.priv.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	d := new(big.Int).SetBytes(raw)
	der, _ := x509.MarshalPKCS8PrivateKey(k.priv)
	secrets := []string{
		d.String(), d.Text(16), fmt.Sprintf("%x", raw), fmt.Sprintf("%X", raw),
		base64.StdEncoding.EncodeToString(der)[40:80], string(pemBytes[40:80]),
	}
	type holder struct {
		Key    *Key
		Val    Key
		hidden *Key
	}
	h := holder{Key: k, Val: *k, hidden: k}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %v"} {
		outs = append(outs, fmt.Sprintf(verb, k), fmt.Sprintf(verb, *k), fmt.Sprintf(verb, h), fmt.Sprintf(verb, &h),
			fmt.Sprintf(verb, k.Signer()), fmt.Sprintf(verb, []*Key{k}), fmt.Sprintf(verb, map[string]Key{"a": *k}))
	}
	outs = append(outs, fmt.Sprint(k), fmt.Sprintln(*k), k.String(), k.GoString())
	for _, v := range []any{k, *k, h, k.Signer()} {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, string(j))
	}
	var sb strings.Builder
	slog.New(slog.NewJSONHandler(&sb, nil)).Info("x", "key", k, "val", *k, "signer", k.Signer())
	slog.New(slog.NewTextHandler(&sb, nil)).Info("x", "key", k, "holder", h)
	outs = append(outs, sb.String())
	if got := k.MarshalLog(); got != redacted {
		t.Errorf("MarshalLog = %v", got)
	}
	for _, out := range outs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Fatalf("output %q contains key material", out)
			}
		}
	}
	if s := fmt.Sprintf("%v", k); s != redacted {
		t.Errorf("%%v = %q, want %q", s, redacted)
	}
}

func TestKeyPEMRoundTrip(t *testing.T) {
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := k.PEM()
	if err != nil {
		t.Fatal(err)
	}
	k2, err := ParseKeyPEM(b)
	if err != nil {
		t.Fatal(err)
	}
	if !k2.priv.Equal(k.priv) {
		t.Fatal("round trip changed the key")
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(p384)
	if _, err := ParseKeyPEM([]byte("-----BEGIN PRIVATE KEY-----\n" + base64.StdEncoding.EncodeToString(der) + "\n-----END PRIVATE KEY-----\n")); err == nil {
		t.Error("P-384 key accepted")
	}
	if _, err := ParseKeyPEM([]byte("junk")); err == nil {
		t.Error("junk accepted")
	}
}

func TestCheckRequest(t *testing.T) {
	id := Identity{"cluster.local", "shop", "web"}
	k, csr, err := NewKeyAndCSR(id)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := CertificateRequest{CSR: csr, Identity: id, TTL: time.Hour}.Check()
	if err != nil {
		t.Fatal(err)
	}
	if len(parsed.URIs) != 1 || parsed.URIs[0].String() != id.String() || parsed.Subject.CommonName != "" {
		t.Errorf("CSR URIs %v CN %q", parsed.URIs, parsed.Subject.CommonName)
	}
	if !parsed.PublicKey.(*ecdsa.PublicKey).Equal(k.Public()) {
		t.Error("CSR key is not the key")
	}
	_, scsr, err := NewServingKeyAndCSR([]string{"xds.capstan-system.svc", "xds"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (CertificateRequest{CSR: scsr, DNSNames: []string{"xds", "xds.capstan-system.svc"}, TTL: time.Hour}).Check(); err != nil {
		t.Errorf("serving request: %v", err)
	}
	if !strings.HasPrefix(string(CertificateRequest{CSR: csr}.CSRPEM()), "-----BEGIN CERTIFICATE REQUEST-----") {
		t.Error("CSRPEM is not a PEM CSR")
	}

	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	u, _ := url.Parse(id.String())
	csr384, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{u}}, p384)
	extra, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{u}, DNSNames: []string{"evil"}}, k.priv)
	tampered := append([]byte(nil), csr...)
	tampered[len(tampered)-5] ^= 0xff
	other := Identity{"cluster.local", "shop", "admin"}
	for name, r := range map[string]CertificateRequest{
		"zero TTL":           {CSR: csr, Identity: id},
		"negative TTL":       {CSR: csr, Identity: id, TTL: -time.Hour},
		"neither":            {CSR: csr, TTL: time.Hour},
		"both":               {CSR: csr, Identity: id, DNSNames: []string{"a"}, TTL: time.Hour},
		"identity mismatch":  {CSR: csr, Identity: other, TTL: time.Hour},
		"invalid identity":   {CSR: csr, Identity: Identity{"cluster.local", "Shop", "web"}, TTL: time.Hour},
		"P-384 key":          {CSR: csr384, Identity: id, TTL: time.Hour},
		"extra DNS SAN":      {CSR: extra, Identity: id, TTL: time.Hour},
		"bad signature":      {CSR: tampered, Identity: id, TTL: time.Hour},
		"not DER":            {CSR: []byte("junk"), Identity: id, TTL: time.Hour},
		"DNS mismatch":       {CSR: scsr, DNSNames: []string{"xds"}, TTL: time.Hour},
		"workload CSR, DNS":  {CSR: csr, DNSNames: []string{"xds"}, TTL: time.Hour},
		"serving CSR, ident": {CSR: scsr, Identity: id, TTL: time.Hour},
	} {
		if _, err := r.Check(); err == nil {
			t.Errorf("%s: Check() = nil, want error", name)
		}
	}
}
