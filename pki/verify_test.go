package pki

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/url"
	"testing"
	"time"
)

// mkCert signs tmpl with parent (self-signed if parent is nil) and returns
// the certificate and its key.
func mkCert(t *testing.T, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *Key) (*x509.Certificate, *Key) {
	t.Helper()
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, k
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, k.Public(), parentKey.Signer())
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, k
}

func TestVerifyWorkloadCertChains(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	id := SpiffeID("cluster.local", "shop", "web")
	u, _ := url.Parse(id)
	ca := func(name string, pathLen int) *x509.Certificate {
		return &x509.Certificate{
			Subject: pkix.Name{CommonName: name}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			IsCA: true, BasicConstraintsValid: true, MaxPathLen: pathLen, MaxPathLenZero: pathLen == 0,
			KeyUsage: x509.KeyUsageCertSign,
		}
	}
	leafTmpl := func(eku ...x509.ExtKeyUsage) *x509.Certificate {
		return &x509.Certificate{
			NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour), URIs: []*url.URL{u},
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: eku, BasicConstraintsValid: true,
		}
	}
	both := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	root, rootKey := mkCert(t, ca("root", 1), nil, nil)
	inter, interKey := mkCert(t, ca("intermediate", 0), root, rootKey)
	leaf, _ := mkCert(t, leafTmpl(both...), inter, interKey)
	bundle := EncodeCertificatesPEM(root)

	// A cert-manager style chain: leaf, intermediate; the root in the bundle.
	if err := VerifyWorkloadCert(EncodeCertificatesPEM(leaf, inter), bundle, id, now); err != nil {
		t.Fatalf("leaf+intermediate: %v", err)
	}
	if err := VerifyWorkloadCert(EncodeCertificatesPEM(leaf), bundle, id, now); err == nil {
		t.Error("verified without the intermediate")
	}
	serverOnly, _ := mkCert(t, leafTmpl(x509.ExtKeyUsageServerAuth), inter, interKey)
	if err := VerifyWorkloadCert(EncodeCertificatesPEM(serverOnly, inter), bundle, id, now); err == nil {
		t.Error("verified a leaf without client auth")
	}
	caLeafTmpl := ca("ca-leaf", 0)
	caLeafTmpl.URIs, caLeafTmpl.ExtKeyUsage = []*url.URL{u}, both
	caLeaf, _ := mkCert(t, caLeafTmpl, inter, interKey)
	if err := VerifyWorkloadCert(EncodeCertificatesPEM(caLeaf, inter), bundle, id, now); err == nil {
		t.Error("verified a CA certificate as a workload certificate")
	}
	dnsTmpl := leafTmpl(both...)
	dnsTmpl.DNSNames = []string{"web.shop.svc"}
	dnsLeaf, _ := mkCert(t, dnsTmpl, inter, interKey)
	if err := VerifyWorkloadCert(EncodeCertificatesPEM(dnsLeaf, inter), bundle, id, now); err == nil {
		t.Error("verified a leaf with an extra DNS SAN")
	}
	if err := VerifyWorkloadCert([]byte("junk"), bundle, id, now); err == nil {
		t.Error("verified junk")
	}
	if err := VerifyWorkloadCert(EncodeCertificatesPEM(leaf, inter), nil, id, now); err == nil {
		t.Error("verified against an empty bundle")
	}
}
