package pki

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"strings"
	"testing"
	"time"
)

func TestRootFingerprints(t *testing.T) {
	a, b := testRoot(t, "a"), testRoot(t, "b")
	bundle := append(append(append([]byte{}, a...), b...), a...)
	fps, err := RootFingerprints(bundle)
	if err != nil {
		t.Fatal(err)
	}
	if len(fps) != 2 {
		t.Fatalf("fingerprints %v, want two (duplicates dropped)", fps)
	}
	joined := JoinFingerprints(fps)
	if got := SplitFingerprints(joined); !CoversFingerprints(got, fps) || len(got) != 2 {
		t.Errorf("SplitFingerprints(%q) = %v", joined, got)
	}
	onlyA, _ := RootFingerprints(a)
	if !CoversFingerprints(fps, onlyA) || CoversFingerprints(onlyA, fps) {
		t.Error("CoversFingerprints is wrong about a subset")
	}
	for _, bad := range []string{"", "$(CAPSTAN_ROOT_FINGERPRINTS)", strings.Repeat("z", 64), fps[0] + ",short"} {
		if got := SplitFingerprints(bad); got != nil {
			t.Errorf("SplitFingerprints(%q) = %v, want nil", bad, got)
		}
	}
}

func testRoot(t *testing.T, name string) []byte {
	t.Helper()
	c, _ := mkCert(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}, nil, nil)
	return EncodeCertificatesPEM(c)
}
