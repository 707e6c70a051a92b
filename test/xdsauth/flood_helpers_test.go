package xdsauth

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/capstanmesh/capstan/xds/server"
)

// countingAuth counts the reviews it is asked for and the most it ran at
// once, around the real authenticator.
type countingAuth struct {
	inner    server.Authenticator
	calls    atomic.Int64
	running  atomic.Int64
	mu       sync.Mutex
	maxAtOnc int64
}

func (c *countingAuth) Authenticate(ctx context.Context, token string) (server.Caller, error) {
	c.calls.Add(1)
	n := c.running.Add(1)
	defer c.running.Add(-1)
	c.mu.Lock()
	c.maxAtOnc = max(c.maxAtOnc, n)
	c.mu.Unlock()
	return c.inner.Authenticate(ctx, token)
}

func (c *countingAuth) maxConcurrent() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.maxAtOnc
}

// attackerIP is the loopback address the flood comes from; the
// legitimate proxies dial from 127.0.0.1, a different peer.
var attackerIP = net.ParseIP("127.0.0.2")

// dialFrom dials addr from a local IP address.
func dialFrom(ip net.IP) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
		return d.DialContext(ctx, "tcp", addr)
	}
}

// junkToken looks like a ServiceAccount token (three base64url parts, an
// expiry in the future, audience capstan) but is not signed by anyone:
// every one is different, so no cache of accepted tokens helps.
func junkToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	enc := base64.RawURLEncoding.EncodeToString
	header := enc([]byte(`{"alg":"RS256","kid":"x"}`))
	payload := enc(fmt.Appendf(nil, `{"aud":["capstan"],"exp":%d,"sub":"system:serviceaccount:x:y"}`, time.Now().Add(time.Hour).Unix()))
	return header + "." + payload + "." + enc(b)
}

// floodStats are what a flood did.
type floodStats struct {
	streams, exchanges atomic.Int64
}

// flood sends junk tokens from attackerIP until ctx ends: workers open
// xDS streams on one TLS connection and others post token exchanges.
func flood(ctx context.Context, t testing.TB, s *xdsServer, workers int) *floodStats {
	t.Helper()
	stats := &floodStats{}
	tlsCfg := &tls.Config{RootCAs: meshRoots(t), ServerName: xdsServiceName}
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)),
		grpc.WithContextDialer(dialFrom(attackerIP)))
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(s.addr)
	httpc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: meshRoots(t), ServerName: "localhost"},
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return dialFrom(attackerIP)(ctx, addr)
		},
	}}
	exchangeURL := "https://localhost:" + port + server.TokenExchangePath
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if i%2 == 0 {
					junkStream(ctx, conn)
					stats.streams.Add(1)
				} else {
					junkExchange(ctx, httpc, exchangeURL)
					stats.exchanges.Add(1)
				}
			}
		}()
	}
	t.Cleanup(func() {
		wg.Wait()
		_ = conn.Close()
		httpc.CloseIdleConnections()
	})
	return stats
}

func junkStream(ctx context.Context, conn *grpc.ClientConn) {
	sctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+junkToken()), 5*time.Second)
	defer cancel()
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(sctx)
	if err != nil {
		return
	}
	_, _ = st.Recv()
}

func junkExchange(ctx context.Context, c *http.Client, u string) {
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"}, "subject_token": {junkToken()}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err == nil {
		_ = resp.Body.Close()
	}
}
