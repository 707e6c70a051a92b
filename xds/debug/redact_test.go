package debug

import (
	"encoding/json"
	"strings"
	"testing"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/capstanmesh/capstan/test/debugfixture"
)

// Each of the two lines of defence removes the key on its own.
func TestRedactSecretKeepsOnlyPublicParts(t *testing.T) {
	cfg := debugfixture.New(t, "spiffe://cluster.local/ns/shop/sa/web")
	for _, r := range cfg.Resources[resourcev3.SecretType] {
		s := redactSecret(r).(*tlsv3.Secret)
		if tc := s.GetTlsCertificate(); tc != nil && (tc.GetPrivateKey() != nil || tc.GetCertificateChain() == nil) {
			t.Errorf("%s: %v", s.GetName(), tc)
		}
		if s.GetName() == debugfixture.Root && s.GetValidationContext().GetTrustedCa() == nil {
			t.Errorf("root lost its CA: %v", s)
		}
	}
}

func TestScrubRemovesKeyFieldsAtAnyDepth(t *testing.T) {
	var doc any
	in := `{"a":{"private_key":{"inline_bytes":"S0VZ"},"b":[{"password":"x","keep":1}]},"session_ticket_keys":{}}`
	if err := json.Unmarshal([]byte(in), &doc); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(scrub(doc))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(out); got != `{"a":{"b":[{"keep":1}]}}` || strings.Contains(got, "S0VZ") {
		t.Errorf("scrubbed %s", got)
	}
}
