package commands

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

func selfSigned(t *testing.T, notAfter time.Time) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "webhook CA"},
		NotBefore: notAfter.Add(-2 * time.Hour), NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestCABundleProblem(t *testing.T) {
	now := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	valid := selfSigned(t, now.Add(time.Hour))
	expired := selfSigned(t, now.Add(-time.Hour))
	for name, tc := range map[string]struct {
		bundle []byte
		want   string
	}{
		"valid":       {valid, ""},
		"empty":       {nil, "caBundle is empty"},
		"not PEM":     {[]byte("hello"), "no PEM certificate"},
		"unreadable":  {pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("x")}), "unreadable certificate"},
		"one expired": {append(append([]byte{}, valid...), expired...), "expired at"},
	} {
		got := caBundleProblem(tc.bundle, now)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: caBundleProblem = %q, want %q", name, got, tc.want)
		}
	}
}

func TestSameVersions(t *testing.T) {
	crds, err := embeddedCRDs()
	if err != nil || len(crds) == 0 {
		t.Fatalf("embedded CRDs: %d, %v", len(crds), err)
	}
	want := crds[0]
	got := want.DeepCopy()
	if !sameVersions(want, got) {
		t.Fatal("a CRD differs from its copy")
	}
	got.Spec.Versions[0].Schema.OpenAPIV3Schema.Description += " (older release)"
	if sameVersions(want, got) {
		t.Error("a changed schema is not noticed")
	}
}

func TestSupportsNativeSidecars(t *testing.T) {
	for _, tc := range []struct {
		major, minor string
		want         bool
	}{
		{"1", "27", false}, {"1", "28", true}, {"1", "30+", true}, {"1", "37", true}, {"2", "0", true},
		{"0", "99", false}, {"", "", false}, {"1", "x", false},
	} {
		if got := supportsNativeSidecars(tc.major, tc.minor); got != tc.want {
			t.Errorf("supportsNativeSidecars(%q, %q) = %v, want %v", tc.major, tc.minor, got, tc.want)
		}
	}
}
