package debug_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/go-logr/logr/testr"

	"github.com/capstanmesh/capstan/test/debugfixture"
	"github.com/capstanmesh/capstan/test/xdsclient"
	"github.com/capstanmesh/capstan/xds/auth"
	"github.com/capstanmesh/capstan/xds/debug"
	"github.com/capstanmesh/capstan/xds/debugapi"
	"github.com/capstanmesh/capstan/xds/server"
)

const (
	webNode   = "sidecar~10.0.0.7~web-0.shop~shop.svc.cluster.local"
	cartNode  = "sidecar~10.0.0.9~cart-0.shop~shop.svc.cluster.local"
	adminNode = "sidecar~10.0.1.2~admin-0.ops~ops.svc.cluster.local"
	nackText  = "Proto constraint validation failed: cluster rejected by this proxy"
	timeout   = 10 * time.Second
)

// authorizer is a narrow stand-in for kubeauth.DebugAuthorizer (tested
// against the real API server in test/debug): token "admin" may see
// everything, "shop" only namespace shop, anything else is unauthenticated.
type authorizer struct {
	mu    sync.Mutex
	asked []auth.DebugAccess
	// block, when set, holds every call until closed.
	block chan struct{}
}

func (a *authorizer) AuthorizeDebug(_ context.Context, token string, access auth.DebugAccess) (string, error) {
	a.mu.Lock()
	a.asked = append(a.asked, access)
	block := a.block
	a.mu.Unlock()
	if block != nil {
		<-block
	}
	switch {
	case token == "admin":
		return "admin", nil
	case token == "shop" && access.Namespace == "shop":
		return "shop", nil
	case token == "shop":
		return "shop", fmt.Errorf("%w: shop may not see %q", auth.ErrForbidden, access.Namespace)
	}
	return "", fmt.Errorf("%w: bad token", auth.ErrUnauthenticated)
}

type fixture struct {
	url    string
	client *http.Client
	authz  *authorizer
	web    debugfixture.Config
}

// start publishes config for three nodes, connects web (ACKs everything)
// and cart (NACKs clusters) with real ADS clients, and serves the endpoint
// over TLS on loopback.
func start(t *testing.T) *fixture {
	t.Helper()
	srv := server.New(server.Options{Logger: testr.New(t)})
	xdsAddr := serve(t, func(ctx context.Context, lis net.Listener) error { return srv.Serve(ctx, lis) })
	f := &fixture{authz: &authorizer{}, web: debugfixture.New(t, "spiffe://cluster.local/ns/shop/sa/web")}
	for node, cfg := range map[string]debugfixture.Config{
		webNode: f.web, cartNode: debugfixture.New(t, "spiffe://cluster.local/ns/shop/sa/cart"),
		adminNode: debugfixture.New(t, "spiffe://cluster.local/ns/ops/sa/admin"),
	} {
		if _, err := srv.SetProxyResourcesWith(node, cfg.Resources, server.SkipConsistencyCheck()); err != nil {
			t.Fatal(err)
		}
	}
	// web speaks delta, as the sidecars do; cart state of the world.
	web := xdsclient.DialDelta(t, xdsAddr, webNode)
	web.Subscribe(t, resourcev3.ListenerType)
	web.Subscribe(t, resourcev3.ClusterType)
	web.Subscribe(t, resourcev3.RouteType, debugfixture.Route)
	web.Subscribe(t, resourcev3.EndpointType, debugfixture.Cluster)
	web.Subscribe(t, resourcev3.SecretType, debugfixture.Cert, debugfixture.Root)
	cart := xdsclient.DialSotW(t, xdsAddr, cartNode)
	cart.Reject(resourcev3.ClusterType, nackText)
	watchAll(t, cart)
	cert, pool := servingCert(t)
	h := debug.NewHandler(debug.Options{Logger: testr.New(t), Source: srv, Authorizer: f.authz, MaxInFlight: 2})
	addr := serve(t, func(ctx context.Context, lis net.Listener) error {
		return debug.Serve(ctx, lis, h, func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil })
	})
	f.url = "https://" + addr
	f.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "capstan-debug.capstan-system.svc"}}}
	t.Cleanup(f.client.CloseIdleConnections)
	waitFor(t, "web SYNCED and cart NACK", func() error {
		var list debugapi.ProxyList
		if code := f.get(t, "admin", debugapi.PathProxies, nil, &list); code != http.StatusOK {
			return fmt.Errorf("status %d", code)
		}
		for _, p := range list.Proxies {
			if p.Node == webNode && !allSynced(p) {
				return fmt.Errorf("web: %+v", p.Types)
			}
			if p.Node == cartNode && stateOf(p, debugapi.TypeClusters) != debugapi.StateNack {
				return fmt.Errorf("cart: %+v", p.Types)
			}
		}
		return nil
	})
	return f
}

func watchAll(t *testing.T, c *xdsclient.SotW) {
	t.Helper()
	c.Watch(t, resourcev3.ListenerType)
	c.Watch(t, resourcev3.ClusterType)
	c.Watch(t, resourcev3.RouteType, debugfixture.Route)
	c.Watch(t, resourcev3.EndpointType, debugfixture.Cluster)
	c.Watch(t, resourcev3.SecretType, debugfixture.Cert, debugfixture.Root)
}

func allSynced(p debugapi.Proxy) bool {
	for _, name := range debugapi.TypeNames {
		if stateOf(p, name) != debugapi.StateSynced {
			return false
		}
	}
	return true
}

func stateOf(p debugapi.Proxy, typ string) string {
	for _, ts := range p.Types {
		if ts.Type == typ {
			return ts.State
		}
	}
	return ""
}

// get calls path with token (none when empty), decodes a 200 into out and
// returns the status code.
func (f *fixture) get(t *testing.T, token, path string, query url.Values, out any) int {
	t.Helper()
	code, body := f.getRaw(t, token, path, query)
	if code == http.StatusOK && out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("decoding %s: %v", body, err)
		}
	}
	return code
}

func (f *fixture) getRaw(t *testing.T, token, path string, query url.Values) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.url+path+"?"+query.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set(debugapi.TokenHeader, token)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func TestProxyStatus(t *testing.T) {
	f := start(t)
	var list debugapi.ProxyList
	if code := f.get(t, "admin", debugapi.PathProxies, nil, &list); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	byNode := map[string]debugapi.Proxy{}
	for _, p := range list.Proxies {
		byNode[p.Node] = p
	}
	if len(byNode) != 3 {
		t.Fatalf("proxies %v, want web, cart and admin", byNode)
	}
	web, cart, admin := byNode[webNode], byNode[cartNode], byNode[adminNode]
	if web.Pod != "web-0" || web.Namespace != "shop" || web.Kind != "sidecar" || web.Streams != 1 {
		t.Errorf("web = %+v", web)
	}
	cl := typeOf(cart, debugapi.TypeClusters)
	if cl.State != debugapi.StateNack || cl.LastNack == nil || cl.LastNack.Message != nackText || cl.LastNack.Version != cl.Served {
		t.Errorf("cart clusters = %+v, want NACK of the served version with %q", cl, nackText)
	}
	if got := stateOf(cart, debugapi.TypeListeners); got != debugapi.StateSynced {
		t.Errorf("cart listeners %s, want SYNCED", got)
	}
	// admin never connected: config is served, nothing was sent.
	if admin.Streams != 0 || stateOf(admin, debugapi.TypeListeners) != debugapi.StateNotSent {
		t.Errorf("admin = %+v, want 0 streams and NOT SENT", admin)
	}
}

func typeOf(p debugapi.Proxy, typ string) debugapi.TypeState {
	for _, ts := range p.Types {
		if ts.Type == typ {
			return ts
		}
	}
	return debugapi.TypeState{}
}

func TestProxyConfig(t *testing.T) {
	f := start(t)
	q := func(typ string) url.Values { return url.Values{"namespace": {"shop"}, "pod": {"web-0"}, "type": {typ}} }
	for _, tc := range []struct {
		typ, name string
		summary   []string
	}{
		{debugapi.TypeListeners, debugfixture.Listener, []string{"0.0.0.0:15001", "1"}},
		{debugapi.TypeRoutes, debugfixture.Route, []string{"1", "web.shop.svc.cluster.local,web.shop,web"}},
		{debugapi.TypeClusters, debugfixture.Cluster, []string{"EDS", "-", "-"}},
		{debugapi.TypeEndpoints, debugfixture.Cluster, []string{"10.0.0.8:8080 HEALTHY"}},
	} {
		var cfg debugapi.Config
		if code := f.get(t, "shop", debugapi.PathConfig, q(tc.typ), &cfg); code != http.StatusOK {
			t.Fatalf("%s: status %d", tc.typ, code)
		}
		if cfg.Node != webNode || len(cfg.Resources) != 1 || cfg.Resources[0].Name != tc.name || cfg.Version == "" {
			t.Fatalf("%s: %+v", tc.typ, cfg)
		}
		r := cfg.Resources[0]
		if strings.Join(r.Summary, "|") != strings.Join(tc.summary, "|") || len(cfg.Columns) != len(r.Summary) {
			t.Errorf("%s summary %q (columns %q), want %q", tc.typ, r.Summary, cfg.Columns, tc.summary)
		}
		if !strings.Contains(string(r.Config), `"@type":"type.googleapis.com/envoy.`) || r.Version == "" {
			t.Errorf("%s config %s", tc.typ, r.Config)
		}
	}
}

// The workload certificate's private key never leaves the operator; the
// certificate and the root do.
func TestProxyConfigSecretsHaveNoKeys(t *testing.T) {
	f := start(t)
	code, body := f.getRaw(t, "admin", debugapi.PathConfig, url.Values{"namespace": {"shop"}, "pod": {"web-0"}, "type": {debugapi.TypeSecrets}})
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	f.web.CheckNoKeyMaterial(t, "the secrets answer", body)
	var cfg debugapi.Config
	if err := json.Unmarshal(body, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Resources) != 2 {
		t.Fatalf("secrets %+v, want default and ROOTCA", cfg.Resources)
	}
	for _, r := range cfg.Resources {
		if !strings.Contains(string(r.Config), "certificate_chain") && !strings.Contains(string(r.Config), "trusted_ca") {
			t.Errorf("%s lost its public part: %s", r.Name, r.Config)
		}
	}
	if s := cfg.Resources[1].Summary; cfg.Resources[1].Name != debugfixture.Cert || s[0] != "certificate" ||
		s[1] != "spiffe://cluster.local/ns/shop/sa/web" {
		t.Errorf("certificate summary %q", s)
	}
}

func TestRefusals(t *testing.T) {
	f := start(t)
	cfg := url.Values{"namespace": {"shop"}, "pod": {"web-0"}, "type": {"listeners"}}
	for _, tc := range []struct {
		name, token, path string
		query             url.Values
		want              int
	}{
		{"no token", "", debugapi.PathProxies, nil, http.StatusUnauthorized},
		{"bad token", "forged", debugapi.PathConfig, cfg, http.StatusUnauthorized},
		{"other namespace", "shop", debugapi.PathConfig, url.Values{"namespace": {"ops"}, "pod": {"admin-0"}, "type": {"listeners"}}, http.StatusForbidden},
		{"every namespace", "shop", debugapi.PathProxies, nil, http.StatusForbidden},
		{"unknown type", "admin", debugapi.PathConfig, url.Values{"namespace": {"shop"}, "pod": {"web-0"}, "type": {"bootstrap"}}, http.StatusBadRequest},
		{"unknown pod", "admin", debugapi.PathConfig, url.Values{"namespace": {"shop"}, "pod": {"gone"}, "type": {"listeners"}}, http.StatusNotFound},
		{"unknown path", "admin", "/debug/v1/secrets", nil, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := f.getRaw(t, tc.token, tc.path, tc.query)
			if code != tc.want {
				t.Errorf("status %d, want %d: %s", code, tc.want, body)
			}
		})
	}
	// The namespace's own proxies are allowed, and only those are listed.
	var list debugapi.ProxyList
	if code := f.get(t, "shop", debugapi.PathProxies, url.Values{"namespace": {"shop"}}, &list); code != http.StatusOK || len(list.Proxies) != 2 {
		t.Errorf("shop's proxies: status %d, %d proxies, want 2", code, len(list.Proxies))
	}
	// Access is asked for the pod and namespace of the request.
	f.authz.mu.Lock()
	defer f.authz.mu.Unlock()
	want := auth.DebugAccess{Subresource: debugapi.SubresourceConfig, Namespace: "ops", Name: "admin-0"}
	found := false
	for _, a := range f.authz.asked {
		found = found || a == want
	}
	if !found {
		t.Errorf("asked %+v, want %+v among them", f.authz.asked, want)
	}
}

// More requests in flight than MaxInFlight are refused with 429.
func TestInFlightLimit(t *testing.T) {
	f := start(t)
	block := make(chan struct{})
	f.authz.mu.Lock()
	f.authz.block = block
	f.authz.mu.Unlock()
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { f.getRaw(t, "admin", debugapi.PathProxies, nil) })
	}
	waitFor(t, "two requests held", func() error {
		f.authz.mu.Lock()
		defer f.authz.mu.Unlock()
		if n := len(f.authz.asked); n < 2+1 { // +1: start's own poll
			return fmt.Errorf("%d asked", n)
		}
		return nil
	})
	code, _ := f.getRaw(t, "admin", debugapi.PathProxies, nil)
	close(block)
	wg.Wait()
	if code != http.StatusTooManyRequests {
		t.Errorf("third request: status %d, want 429", code)
	}
}

func serve(t *testing.T, run func(context.Context, net.Listener) error) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("serve: %v", err)
		}
	})
	return lis.Addr().String()
}

func waitFor(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
