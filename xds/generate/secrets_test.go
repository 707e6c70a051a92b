package generate

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// Test-only PEM: the bodies are base64 text saying so, not keys or
// certificates. Secrets checks PEM framing only, so the goldens hold no key.
const (
	testLeafPEM   = "-----BEGIN CERTIFICATE-----\nVEVTVCBMRUFGIENFUlRJRklDQVRF\n-----END CERTIFICATE-----\n"
	testInterPEM  = "-----BEGIN CERTIFICATE-----\nVEVTVCBJTlRFUk1FRElBVEU=\n-----END CERTIFICATE-----\n"
	testRootPEM   = "-----BEGIN CERTIFICATE-----\nVEVTVCBST09U\n-----END CERTIFICATE-----\n"
	testRoot2PEM  = "-----BEGIN CERTIFICATE-----\nVEVTVCBORVhUIFJPT1Q=\n-----END CERTIFICATE-----\n"
	testKeyPEM    = "-----BEGIN PRIVATE KEY-----\nVEVTVCBLRVkgLSBOT1QgQSBSRUFMIEtFWQ==\n-----END PRIVATE KEY-----\n"
	sdsGoldenDir  = "sds"
	sdsGoldenFile = "secrets.yaml"
)

func testIdentitySecrets() IdentitySecrets {
	return IdentitySecrets{
		ChainPEM:  []byte(testLeafPEM + testInterPEM),
		KeyPEM:    []byte(testKeyPEM),
		BundlePEM: []byte(testRootPEM + testRoot2PEM),
	}
}

func TestSecretsGolden(t *testing.T) {
	got, err := Secrets(testIdentitySecrets())
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, filepath.Join("testdata", sdsGoldenDir, sdsGoldenFile), renderList(t, got))
}

// TestSDSGoldenHasNoOrphans: testdata/sds holds only the secrets golden.
func TestSDSGoldenHasNoOrphans(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join("testdata", sdsGoldenDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != sdsGoldenFile {
			t.Errorf("testdata/%s/%s: unexpected file", sdsGoldenDir, e.Name())
		}
	}
}

func TestSecretsCarryTheInputs(t *testing.T) {
	in := testIdentitySecrets()
	got, err := Secrets(in)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*tlsv3.Secret{}
	for _, s := range got {
		byName[s.GetName()] = s
	}
	if len(byName) != 2 {
		t.Fatalf("got %d secrets, want %s and %s", len(got), SecretWorkloadCert, SecretRootCA)
	}
	tc := byName[SecretWorkloadCert].GetTlsCertificate()
	if !bytes.Equal(tc.GetCertificateChain().GetInlineBytes(), in.ChainPEM) || !bytes.Equal(tc.GetPrivateKey().GetInlineBytes(), in.KeyPEM) {
		t.Error("default secret does not carry the chain and key")
	}
	if !bytes.Equal(byName[SecretRootCA].GetValidationContext().GetTrustedCa().GetInlineBytes(), in.BundlePEM) {
		t.Error("ROOTCA secret does not carry the bundle")
	}
	in.ChainPEM[0] = 'X'
	if tc.GetCertificateChain().GetInlineBytes()[0] == 'X' {
		t.Error("secrets alias the input")
	}
	if s := in.String() + in.GoString(); strings.Contains(s, "TEST KEY") || strings.Contains(s, "VEVTVCBLRVkg") {
		t.Errorf("String prints the key: %s", s)
	}
}

func TestSecretsRefuseBadInput(t *testing.T) {
	good := testIdentitySecrets()
	for name, mutate := range map[string]func(*IdentitySecrets){
		"no chain":          func(s *IdentitySecrets) { s.ChainPEM = nil },
		"chain not PEM":     func(s *IdentitySecrets) { s.ChainPEM = []byte("junk") },
		"chain has key":     func(s *IdentitySecrets) { s.ChainPEM = []byte(testLeafPEM + testKeyPEM) },
		"chain trailing":    func(s *IdentitySecrets) { s.ChainPEM = []byte(testLeafPEM + "junk") },
		"no key":            func(s *IdentitySecrets) { s.KeyPEM = nil },
		"key is a cert":     func(s *IdentitySecrets) { s.KeyPEM = []byte(testLeafPEM) },
		"two keys":          func(s *IdentitySecrets) { s.KeyPEM = []byte(testKeyPEM + testKeyPEM) },
		"no bundle":         func(s *IdentitySecrets) { s.BundlePEM = nil },
		"bundle has a key":  func(s *IdentitySecrets) { s.BundlePEM = []byte(testRootPEM + testKeyPEM) },
		"bundle whitespace": func(s *IdentitySecrets) { s.BundlePEM = []byte("  \n") },
	} {
		in := testIdentitySecrets()
		mutate(&in)
		_, err := Secrets(in)
		if err == nil {
			t.Errorf("%s: Secrets accepted it", name)
			continue
		}
		if strings.Contains(err.Error(), "VEVTVCBLRVkg") {
			t.Errorf("%s: error quotes the key: %v", name, err)
		}
	}
	if _, err := Secrets(good); err != nil {
		t.Errorf("good input refused: %v", err)
	}
}

// TestNeedsSecrets cross-checks NeedsSecrets with the golden outputs: a case
// needs secrets exactly when its listeners or clusters have a TLS socket.
func TestNeedsSecrets(t *testing.T) {
	seen := map[bool]int{}
	for _, dir := range caseDirs(t) {
		res, _ := generateCase(t, dir)
		want := false
		for _, f := range []string{"listeners.yaml", "clusters.yaml"} {
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			want = want || bytes.Contains(b, []byte(transportSocketTLS))
		}
		if got := NeedsSecrets(res.ByType()); got != want {
			t.Errorf("%s: NeedsSecrets = %v, want %v", dir, got, want)
		}
		seen[want]++
	}
	if seen[true] == 0 || seen[false] == 0 {
		t.Errorf("cases cover only one answer: %v", seen)
	}
}
