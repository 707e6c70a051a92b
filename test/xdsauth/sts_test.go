package xdsauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/go-logr/logr/funcr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/sts"
	"google.golang.org/grpc/status"

	"github.com/capstanmesh/capstan/internal/meshmetrics"
	"github.com/capstanmesh/capstan/pki"
	"github.com/capstanmesh/capstan/xds/auth/kubeauth"
	"github.com/capstanmesh/capstan/xds/server"
)

// xdsServiceName is the serving certificate's name that clients verify.
// "localhost" is in it too, so that the token exchange URL can be dialled
// in this test (serving certificates never carry IP addresses).
const xdsServiceName = "capstan-xds.capstan-system.svc"

// servingCertificate signs a serving certificate with meshCA.
func servingCertificate(t testing.TB) *tls.Certificate {
	t.Helper()
	names := []string{xdsServiceName, "localhost"}
	key, csr, err := pki.NewServingKeyAndCSR(names)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := meshCA.Sign(context.Background(), pki.CertificateRequest{CSR: csr, DNSNames: names, TTL: time.Hour})
	if err != nil {
		t.Fatalf("signing the serving certificate: %v", err)
	}
	tc, err := key.TLSCertificate(cert.ChainPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &tc
}

// startTLSServer serves xDS and the token exchange over TLS, authenticated
// by TokenReview, on localhost until t ends.
func startTLSServer(t *testing.T) *xdsServer {
	t.Helper()
	return startTLSServerWith(t, nil)
}

// startTLSServerWith is startTLSServer with options changed by edit (nil:
// none); the Authenticator is the real TokenReview one unless edit sets it.
func startTLSServerWith(t testing.TB, edit func(*server.Options)) *xdsServer {
	t.Helper()
	cert := servingCertificate(t)
	logs := &logBuffer{}
	opts := server.Options{
		Logger:         funcr.New(logs.write, funcr.Options{}),
		Authenticator:  &kubeauth.TokenReviewAuthenticator{Client: env.Client, Audience: kubeauth.XDSTokenAudience},
		Pods:           kubeauth.PodLookup{Reader: env.Client},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil },
		// The manager's observer: authFailures reads its registry.
		Observer: meshmetrics.XDS(),
	}
	if edit != nil {
		edit(&opts)
	}
	s := server.New(opts)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, s, lis)
	return &xdsServer{Server: s, addr: lis.Addr().String(), logs: logs}
}

// meshRoots is the pool a proxy's bootstrap trusts: the mesh root.
func meshRoots(t testing.TB) *x509.CertPool {
	t.Helper()
	bundle, err := meshCA.TrustBundle(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(bundle) {
		t.Fatal("the mesh bundle has no certificate")
	}
	return pool
}

// stsDialOptions are what a proxy's bootstrap sets up: TLS verified against
// the mesh root for the xDS service name, and gRPC's STS call credentials
// reading the projected token file and trading it at the token exchange.
func stsDialOptions(t *testing.T, s *xdsServer, tokenFile string) []grpc.DialOption {
	t.Helper()
	_, port, _ := net.SplitHostPort(s.addr)
	creds, err := sts.NewCredentials(sts.Options{
		TokenExchangeServiceURI: "https://localhost:" + port + server.TokenExchangePath,
		Audience:                kubeauth.XDSTokenAudience,
		SubjectTokenPath:        tokenFile,
		SubjectTokenType:        "urn:ietf:params:oauth:token-type:jwt",
	})
	if err != nil {
		t.Fatal(err)
	}
	return []grpc.DialOption{
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: meshRoots(t), ServerName: xdsServiceName})),
		grpc.WithPerRPCCredentials(creds),
	}
}

func writeToken(t *testing.T, token string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSTSCredentialsOverTLS is the proxy's path end to end with a client
// nobody here wrote: gRPC Go's STS call credentials read the projected
// token file, exchange it at the xDS server over TLS, and present the
// result on the xDS stream, which is then bound to the pod.
func TestSTSCredentialsOverTLS(t *testing.T) {
	ns := env.NewNamespace(t)
	web := newWorkload(t, ns, "web", "web-0", "10.0.2.7")
	s := startTLSServer(t)
	s.publish(t, web.nodeID)
	tok := web.token(t, kubeauth.XDSTokenAudience)

	c, err := outcome(t, s, web.nodeID, stsDialOptions(t, s, writeToken(t, tok))...)
	if err != nil {
		t.Fatalf("stream with STS credentials refused: %v", err)
	}
	if _, ok := c.Snapshot()[resourcev3.ClusterType][clusterName]; !ok {
		t.Fatalf("no cluster %s", clusterName)
	}

	// A token for another audience fails at the exchange: the stream never
	// opens with it, and nothing is sent.
	other := newWorkload(t, ns, "api", "api-0", "10.0.2.8")
	s.publish(t, other.nodeID)
	bad := other.token(t, "https://kubernetes.default.svc")
	if err := openStream(t, s, stsDialOptions(t, s, writeToken(t, bad))); status.Code(err) != codes.Unauthenticated ||
		!strings.Contains(err.Error(), "401") {
		t.Errorf("stream with a wrong-audience token: %v, want Unauthenticated from a refused exchange (401)", err)
	}

	// A token for web presented as api's node: exchanged fine, refused on the stream.
	c, err = outcome(t, s, other.nodeID, stsDialOptions(t, s, writeToken(t, tok))...)
	wantRefused(t, c, err, server.ReasonPodMismatch)
	s.checkNoTokenLogged(t, tok, bad)
}

// openStream opens a delta ADS stream with opts and returns the error of
// opening it (the call credentials run then).
func openStream(t *testing.T, s *xdsServer, opts []grpc.DialOption) error {
	t.Helper()
	conn, err := grpc.NewClient(s.addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, err = discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	return err
}

// serve runs s on lis until t ends.
func serve(t testing.TB, s *server.Server, lis net.Listener) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(waitTimeout):
			t.Errorf("Serve did not return within %s", waitTimeout)
		}
	})
}
