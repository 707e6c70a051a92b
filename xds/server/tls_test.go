package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

const testServerName = "capstan-xds.capstan-system.svc"

// servingCert is a self-signed serving certificate for testServerName and
// the pool that trusts it.
func servingCert(t *testing.T) (*tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: testServerName},
		DNSNames:     []string{testServerName},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// startTLSServer serves xDS and the token exchange over TLS with
// authentication on; the returned env's streams use TLS.
func startTLSServer(t *testing.T) (*authEnv, *x509.CertPool) {
	t.Helper()
	cert, pool := servingCert(t)
	e := startOptsServer(t, Options{
		Authenticator: defaultAuth(), Pods: defaultPods(),
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil },
	})
	e.creds = credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: testServerName})
	return e, pool
}

func TestTLSServesAuthenticatedXDS(t *testing.T) {
	e, _ := startTLSServer(t)
	if _, err := e.SetProxyResources(testNode, sidecarConfig(t, edsCluster("c1", time.Second))); err != nil {
		t.Fatal(err)
	}
	d := e.deltaStream(t, "authorization", "Bearer "+goodToken)
	d.send(&discoveryv3.DeltaDiscoveryRequest{Node: xdsNode(testNode), TypeUrl: resourcev3.ClusterType})
	if got := deltaNames(d.recv()); len(got) != 1 || got[0] != "c1" {
		t.Fatalf("clusters over TLS = %v, want [c1]", got)
	}

	// Without a token the TLS stream is still refused.
	refused := e.deltaStream(t)
	// The server may end the stream before the request is sent: the error is read below.
	_ = refused.stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: xdsNode(testNode), TypeUrl: resourcev3.ClusterType})
	wantRefused(t, e, refused.recvErr(), codes.PermissionDenied, ReasonMissingToken)
}

func TestTLSRefusesPlaintextAndUntrustedClients(t *testing.T) {
	e, _ := startTLSServer(t)
	e.creds = nil // plaintext gRPC to a TLS port
	if err := e.firstDeltaError(t); status.Code(err) != codes.Unavailable {
		t.Errorf("plaintext client: %v, want Unavailable", err)
	}
	// A client that does not trust the serving certificate never sends its token.
	e.creds = credentials.NewTLS(&tls.Config{RootCAs: x509.NewCertPool(), ServerName: testServerName})
	if err := e.firstDeltaError(t); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusting client: %v, want Unavailable naming the certificate", err)
	}
	if n := e.auth.calls.Load(); n != 0 {
		t.Errorf("the authenticator was asked %d times, want 0", n)
	}
}

// firstDeltaError opens a delta stream with a good token, sends one request
// and returns the first error of the three steps.
func (e *authEnv) firstDeltaError(t *testing.T) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ads := discoveryv3.NewAggregatedDiscoveryServiceClient(e.conn(t))
	stream, err := ads.DeltaAggregatedResources(withMD("authorization", "Bearer "+goodToken)(ctx))
	if err != nil {
		return err
	}
	if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: xdsNode(testNode), TypeUrl: resourcev3.ClusterType}); err != nil {
		_, err = stream.Recv()
		return err
	}
	_, err = stream.Recv()
	return err
}

// exchange posts a token exchange request with the given content type and
// returns the status and decoded body.
func exchange(t *testing.T, e *authEnv, pool *x509.CertPool, method, contentType, body string) (int, map[string]any) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: testServerName}}}
	req, err := http.NewRequest(method, "https://"+e.addr+TokenExchangePath, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("token exchange: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("token exchange answered %d with a body that is not JSON: %q", resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

func jsonExchange(token, tokenType string) string {
	b, _ := json.Marshal(map[string]string{
		"grant_type": grantTypeTokenExchange, "subject_token": token, "subject_token_type": tokenType,
		"audience": "capstan", "scope": "xds",
	})
	return string(b)
}

func TestTokenExchange(t *testing.T) {
	e, pool := startTLSServer(t)
	before := authFailureCount(t, ReasonInvalidToken)

	code, body := exchange(t, e, pool, http.MethodPost, "application/json", jsonExchange(goodToken, tokenTypeJWT))
	if code != http.StatusOK || body["access_token"] != goodToken || body["token_type"] != "Bearer" ||
		body["issued_token_type"] != tokenTypeAccessToken || body["expires_in"].(float64) <= 0 {
		t.Errorf("JSON exchange: %d %v", code, body)
	}
	form := url.Values{"grant_type": {grantTypeTokenExchange}, "subject_token": {goodToken}, "subject_token_type": {tokenTypeJWT}}
	if code, body := exchange(t, e, pool, http.MethodPost, "application/x-www-form-urlencoded", form.Encode()); code != http.StatusOK || body["access_token"] != goodToken {
		t.Errorf("form exchange: %d %v", code, body)
	}

	for _, tc := range []struct {
		name, method, contentType, body string
		want                            int
	}{
		{"unknown token", http.MethodPost, "application/json", jsonExchange("forged", tokenTypeJWT), http.StatusUnauthorized},
		{"token bound to no pod", http.MethodPost, "application/json", jsonExchange("unbound", tokenTypeJWT), http.StatusUnauthorized},
		{"wrong token type", http.MethodPost, "application/json", jsonExchange(goodToken, "urn:x"), http.StatusBadRequest},
		{"wrong grant", http.MethodPost, "application/x-www-form-urlencoded", "grant_type=password&subject_token=x&subject_token_type=" + url.QueryEscape(tokenTypeJWT), http.StatusBadRequest},
		{"not JSON", http.MethodPost, "application/json", "{", http.StatusBadRequest},
		{"other content type", http.MethodPost, "text/plain", "x", http.StatusBadRequest},
		{"GET", http.MethodGet, "application/json", "", http.StatusMethodNotAllowed},
	} {
		if code, body := exchange(t, e, pool, tc.method, tc.contentType, tc.body); code != tc.want || body["error"] == "" || body["access_token"] != nil {
			t.Errorf("%s: %d %v, want %d and an error", tc.name, code, body, tc.want)
		}
	}
	if got := authFailureCount(t, ReasonInvalidToken) - before; got != 1 {
		t.Errorf("invalid_token refusals counted: %v, want 1", got)
	}
	if strings.Contains(e.logs.String(), goodToken) || strings.Contains(e.logs.String(), "forged") {
		t.Errorf("a token is in the logs:\n%s", e.logs.String())
	}
}

func TestExchangeLifetime(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	jwt := func(claims string) string {
		return "e30." + base64.RawURLEncoding.EncodeToString([]byte(claims)) + ".sig"
	}
	for _, tc := range []struct {
		token string
		want  time.Duration
	}{
		{jwt(fmt.Sprintf(`{"exp":%d}`, now.Unix()+600)), 10 * time.Minute},
		{jwt(fmt.Sprintf(`{"exp":%d}`, now.Unix()+86400)), maxExchangeLifetime},
		{jwt(fmt.Sprintf(`{"exp":%d}`, now.Unix()-5)), 0},
		{jwt(`{"sub":"x"}`), defaultExchangeLifetime},
		{"opaque", defaultExchangeLifetime},
		{"a.!!!.c", defaultExchangeLifetime},
	} {
		if got := exchangeLifetime(tc.token, now); got != tc.want {
			t.Errorf("exchangeLifetime(%q) = %v, want %v", tc.token, got, tc.want)
		}
	}
}
