package server

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/go-logr/logr/funcr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// fakeAuth accepts the tokens it knows.
type fakeAuth struct {
	callers map[string]Caller
	err     error // returned for unknown tokens, when set
	calls   atomic.Int64
}

func (f *fakeAuth) Authenticate(_ context.Context, token string) (Caller, error) {
	f.calls.Add(1)
	if c, ok := f.callers[token]; ok {
		return c, nil
	}
	if f.err != nil {
		return Caller{}, f.err
	}
	// An authenticator may say what it was given; the server must redact it.
	return Caller{}, fmt.Errorf("token %q is not valid", token)
}

type fakePods map[string][2]string // namespace/name → uid, service account

func (f fakePods) Pod(namespace, name string) (string, string, bool) {
	p, ok := f[namespace+"/"+name]
	return p[0], p[1], ok
}

// syncBuffer collects log lines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) write(prefix, args string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.WriteString(prefix + " " + args + "\n")
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const (
	goodToken  = "good-token-secret-1"
	otherToken = "other-pod-token-secret-2"
)

var webCaller = Caller{Namespace: "shop", ServiceAccount: "web", PodName: "web-0", PodUID: "uid-web-0"}

type authEnv struct {
	*Server
	addr string
	auth *fakeAuth
	logs *syncBuffer
	// creds are the client's transport credentials; nil is plaintext.
	creds credentials.TransportCredentials
}

func startAuthServer(t *testing.T, auth *fakeAuth, pods PodLookup, ttl time.Duration, extra ...grpc.ServerOption) *authEnv {
	t.Helper()
	return startOptsServer(t, Options{Authenticator: auth, Pods: pods, AuthCacheTTL: ttl, ServerOptions: extra})
}

// startOptsServer serves opts (with a logger that records) on a loopback port
// until t ends.
func startOptsServer(t *testing.T, opts Options) *authEnv {
	t.Helper()
	logs := &syncBuffer{}
	opts.Logger = funcr.New(logs.write, funcr.Options{Verbosity: 10})
	if opts.Observer == nil {
		opts.Observer = refusals
	}
	s := New(opts)
	addr, stop := serveOnLoopback(t, s)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	auth, _ := opts.Authenticator.(*fakeAuth)
	return &authEnv{Server: s, addr: addr, auth: auth, logs: logs}
}

func defaultAuth() *fakeAuth {
	return &fakeAuth{callers: map[string]Caller{
		goodToken:  webCaller,
		otherToken: {Namespace: "shop", ServiceAccount: "api", PodName: "api-0", PodUID: "uid-api-0"},
		"unbound":  {Namespace: "shop", ServiceAccount: "web"},
	}}
}

func defaultPods() fakePods {
	return fakePods{"shop/web-0": {"uid-web-0", "web"}, "shop/api-0": {"uid-api-0", "api"}}
}

// conn dials the server; md, when not empty, is sent on every stream.
func (e *authEnv) conn(t *testing.T) *grpc.ClientConn {
	t.Helper()
	creds := e.creds
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func withMD(md ...string) func(context.Context) context.Context {
	return func(ctx context.Context) context.Context {
		if len(md) == 0 {
			return ctx
		}
		return metadata.AppendToOutgoingContext(ctx, md...)
	}
}

func (e *authEnv) deltaStream(t *testing.T, md ...string) *deltaClient {
	t.Helper()
	ads := discoveryv3.NewAggregatedDiscoveryServiceClient(e.conn(t))
	return newXDSClient(t, func(ctx context.Context) (bidi[*discoveryv3.DeltaDiscoveryRequest, *discoveryv3.DeltaDiscoveryResponse], error) {
		return ads.DeltaAggregatedResources(withMD(md...)(ctx))
	})
}

func (e *authEnv) sotwStream(t *testing.T, md ...string) *sotwClient {
	t.Helper()
	ads := discoveryv3.NewAggregatedDiscoveryServiceClient(e.conn(t))
	return newXDSClient(t, func(ctx context.Context) (bidi[*discoveryv3.DiscoveryRequest, *discoveryv3.DiscoveryResponse], error) {
		return ads.StreamAggregatedResources(withMD(md...)(ctx))
	})
}

// refusals counts the refusals of the servers the tests start with
// startOptsServer (their Observer unless a test sets its own).
var refusals = &refusalCounter{counts: map[string]float64{}}

// refusalCounter is an Observer counting refusals by kind and reason.
type refusalCounter struct {
	nopObserver
	mu     sync.Mutex
	counts map[string]float64
}

func (r *refusalCounter) StreamRefused(reason string)     { r.add("stream/" + reason) }
func (r *refusalCounter) ConnectionRefused(reason string) { r.add("connection/" + reason) }

func (r *refusalCounter) add(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts[key]++
}

func (r *refusalCounter) count(key string) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[key]
}

// authFailureCount is how many streams the test servers refused for reason
// (capstan_xds_auth_failures_total{reason} in the manager).
func authFailureCount(t *testing.T, reason string) float64 {
	t.Helper()
	if !slices.Contains(StreamRefusalReasons, reason) {
		t.Fatalf("%s is not in StreamRefusalReasons", reason)
	}
	return refusals.count("stream/" + reason)
}

// wantRefused checks that a stream ended with code and the reason, sent
// nothing, and that neither the error nor the logs hold a token.
func wantRefused(t *testing.T, e *authEnv, err error, code codes.Code, reason string) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("stream ended with %v, want %v", err, code)
	}
	if !strings.Contains(status.Convert(err).Message(), reason) {
		t.Errorf("message %q does not name reason %s", status.Convert(err).Message(), reason)
	}
	for _, tok := range []string{goodToken, otherToken} {
		if strings.Contains(err.Error(), tok) || strings.Contains(e.logs.String(), tok) {
			t.Errorf("a token leaked into the error or the logs:\n%v\n%s", err, e.logs.String())
		}
	}
	if !strings.Contains(e.logs.String(), `"reason"="`+reason+`"`) {
		t.Errorf("refusal not logged with reason %s:\n%s", reason, e.logs.String())
	}
}

func TestAuthAcceptsBoundPodAndServesConfig(t *testing.T) {
	// An interceptor after the server's own sees the caller in the stream context.
	callers := make(chan Caller, 4)
	seeCaller := grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		c, _ := CallerFromContext(ss.Context())
		callers <- c
		return h(srv, ss)
	})
	e := startAuthServer(t, defaultAuth(), defaultPods(), 0, seeCaller)
	changed, err := e.SetProxyResources(testNode, sidecarConfig(t, edsCluster("c1", time.Second)))
	if err != nil || !changed {
		t.Fatalf("SetProxyResources: %v, %v", changed, err)
	}
	d := e.deltaStream(t, "authorization", "Bearer "+goodToken)
	d.send(&discoveryv3.DeltaDiscoveryRequest{Node: xdsNode(testNode), TypeUrl: resourcev3.ClusterType})
	resp := d.recv()
	if got := deltaNames(resp); len(got) != 1 || got[0] != "c1" {
		t.Fatalf("clusters = %v, want [c1]", got)
	}
	d.send(deltaAckOf(resp))
	if c := <-callers; c != webCaller {
		t.Errorf("caller in the stream context = %+v, want %+v", c, webCaller)
	}

	// Lower-case scheme, state of the world, node repeated on every request.
	s := e.sotwStream(t, "authorization", "bearer "+goodToken)
	s.send(&discoveryv3.DiscoveryRequest{Node: xdsNode(testNode), TypeUrl: resourcev3.ClusterType})
	sresp := s.recv()
	if len(sresp.GetResources()) != 1 {
		t.Fatalf("got %d clusters, want 1", len(sresp.GetResources()))
	}
	ack := ackOf(sresp)
	ack.Node = xdsNode(testNode)
	s.send(ack)
	e.waitAcked(t, resourcev3.ClusterType, sresp.GetVersionInfo())
}

func (e *authEnv) waitAcked(t *testing.T, typeURL, version string) {
	t.Helper()
	eventually(t, "ACK", func() bool {
		st, ok := e.ProxyStatus(testNode)
		return ok && st.Types[typeURL].AckedVersion == version
	})
}

func TestAuthRefusals(t *testing.T) {
	otherPodNode := "sidecar~10.0.0.8~api-0.shop~shop.svc.cluster.local"
	tests := []struct {
		name   string
		md     []string
		node   string
		pods   fakePods
		auth   *fakeAuth
		code   codes.Code
		reason string
	}{
		{name: "no token", code: codes.PermissionDenied, reason: ReasonMissingToken},
		{name: "not bearer", md: []string{"authorization", "Basic " + goodToken}, code: codes.PermissionDenied, reason: ReasonMissingToken},
		{name: "empty bearer", md: []string{"authorization", "Bearer "}, code: codes.PermissionDenied, reason: ReasonMissingToken},
		{name: "two tokens", md: []string{"authorization", "Bearer " + goodToken, "authorization", "Bearer " + goodToken}, code: codes.PermissionDenied, reason: ReasonMissingToken},
		{name: "invalid token", md: []string{"authorization", "Bearer not-" + goodToken}, code: codes.PermissionDenied, reason: ReasonInvalidToken},
		{name: "verifier down", md: []string{"authorization", "Bearer x"}, code: codes.Unavailable, reason: ReasonUnavailable,
			auth: &fakeAuth{err: fmt.Errorf("review: %w", ErrAuthUnavailable)}},
		{name: "token not bound to a pod", md: []string{"authorization", "Bearer unbound"}, code: codes.PermissionDenied, reason: ReasonUnboundToken},
		{name: "another pod's token", md: []string{"authorization", "Bearer " + otherToken}, code: codes.PermissionDenied, reason: ReasonPodMismatch},
		{name: "node ID naming another pod", md: []string{"authorization", "Bearer " + goodToken}, node: otherPodNode, code: codes.PermissionDenied, reason: ReasonPodMismatch},
		{name: "no node", md: []string{"authorization", "Bearer " + goodToken}, node: "-", code: codes.PermissionDenied, reason: ReasonBadNodeID},
		{name: "bad node ID", md: []string{"authorization", "Bearer " + goodToken}, node: "web-0", code: codes.PermissionDenied, reason: ReasonBadNodeID},
		{name: "pod gone", md: []string{"authorization", "Bearer " + goodToken}, pods: fakePods{}, code: codes.PermissionDenied, reason: ReasonUnknownPod},
		{name: "pod recreated", md: []string{"authorization", "Bearer " + goodToken}, pods: fakePods{"shop/web-0": {"uid-new", "web"}}, code: codes.PermissionDenied, reason: ReasonPodUIDMismatch},
		{name: "other service account", md: []string{"authorization", "Bearer " + goodToken}, pods: fakePods{"shop/web-0": {"uid-web-0", "admin"}}, code: codes.PermissionDenied, reason: ReasonServiceAccount},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			auth, pods := tt.auth, tt.pods
			if auth == nil {
				auth = defaultAuth()
			}
			if pods == nil {
				pods = defaultPods()
			}
			e := startAuthServer(t, auth, pods, 0)
			node := testNode
			switch tt.node {
			case "":
			case "-":
				node = ""
			default:
				node = tt.node
			}
			for _, n := range []string{testNode, otherPodNode} {
				if _, err := e.SetProxyResources(n, sidecarConfig(t, edsCluster("c1", time.Second))); err != nil {
					t.Fatal(err)
				}
			}
			before := authFailureCount(t, tt.reason)
			d := e.deltaStream(t, tt.md...)
			req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.ClusterType}
			if node != "" {
				req.Node = xdsNode(node)
			}
			// The stream may already be closed when the token is refused.
			_ = d.stream.Send(req)
			select {
			case r := <-d.resps:
				t.Fatalf("refused stream got a response: %v", r)
			case err := <-d.errs:
				wantRefused(t, e, err, tt.code, tt.reason)
			case <-time.After(waitTimeout):
				t.Fatal("stream not refused")
			}
			if got := authFailureCount(t, tt.reason); got != before+1 {
				t.Errorf("%s{reason=%s} = %v, want %v", authMetricName, tt.reason, got, before+1)
			}
		})
	}
}

func TestAuthRefusesLaterRequestForAnotherNode(t *testing.T) {
	e := startAuthServer(t, defaultAuth(), defaultPods(), 0)
	other := "sidecar~10.0.0.7~api-0.shop~shop.svc.cluster.local"
	for _, n := range []string{testNode, other} {
		if _, err := e.SetProxyResources(n, sidecarConfig(t, edsCluster("c1", time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	before := authFailureCount(t, ReasonNodeChanged)
	s := e.sotwStream(t, "authorization", "Bearer "+goodToken)
	s.send(&discoveryv3.DiscoveryRequest{Node: xdsNode(testNode), TypeUrl: resourcev3.ClusterType})
	first := s.recv()
	// Switch nodes and ask for another type.
	s.send(&discoveryv3.DiscoveryRequest{Node: xdsNode(other), TypeUrl: resourcev3.ListenerType})
	select {
	case r := <-s.resps:
		t.Fatalf("got a response after naming another node: %v", r.GetTypeUrl())
	case err := <-s.errs:
		wantRefused(t, e, err, codes.PermissionDenied, ReasonNodeChanged)
	case <-time.After(waitTimeout):
		t.Fatal("stream not refused")
	}
	if got := authFailureCount(t, ReasonNodeChanged); got != before+1 {
		t.Errorf("node_id_changed count = %v, want %v", got, before+1)
	}
	if first.GetTypeUrl() != resourcev3.ClusterType {
		t.Errorf("first response type %s", first.GetTypeUrl())
	}
}

func TestAuthCachesSuccessAndRefusal(t *testing.T) {
	auth := defaultAuth()
	e := startAuthServer(t, auth, defaultPods(), time.Hour)
	if _, err := e.SetProxyResources(testNode, sidecarConfig(t, edsCluster("c1", time.Second))); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		d := e.deltaStream(t, "authorization", "Bearer "+goodToken)
		d.send(&discoveryv3.DeltaDiscoveryRequest{Node: xdsNode(testNode), TypeUrl: resourcev3.ClusterType})
		d.recv()
		d.close()
	}
	if got := auth.calls.Load(); got != 1 {
		t.Errorf("Authenticate called %d times for one token, want 1 (cached)", got)
	}
	for range 2 {
		d := e.deltaStream(t, "authorization", "Bearer bad")
		_ = d.stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: xdsNode(testNode), TypeUrl: resourcev3.ClusterType})
		if err := d.recvErr(); status.Code(err) != codes.PermissionDenied {
			t.Fatalf("bad token: %v", err)
		}
	}
	if got := auth.calls.Load(); got != 2 {
		t.Errorf("Authenticate called %d times, want 2: a refusal is cached briefly", got)
	}
}

func TestAuthCacheExpiresAndIsBounded(t *testing.T) {
	auth := defaultAuth()
	c := newAuthCache(auth, 30*time.Second, ReviewLimits{})
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	ctx := context.Background()
	for range 2 {
		if _, _, err := c.authenticate(ctx, goodToken, "peer"); err != nil {
			t.Fatal(err)
		}
	}
	if got := auth.calls.Load(); got != 1 {
		t.Fatalf("calls = %d, want 1", got)
	}
	now = now.Add(31 * time.Second)
	if _, _, err := c.authenticate(ctx, goodToken, "peer"); err != nil {
		t.Fatal(err)
	}
	if got := auth.calls.Load(); got != 2 {
		t.Fatalf("calls after expiry = %d, want 2", got)
	}
	if _, _, err := c.authenticate(ctx, "bad", "peer"); err == nil {
		t.Fatal("bad token accepted")
	}

	c.max = 3
	for i := range 10 {
		auth.callers[fmt.Sprint("t", i)] = webCaller
		now = now.Add(time.Second) // the peer's review budget refills
		if _, _, err := c.authenticate(ctx, fmt.Sprint("t", i), "peer"); err != nil {
			t.Fatal(err)
		}
		if n, _ := c.len(); n > c.max {
			t.Fatalf("cache holds %d entries, max %d", n, c.max)
		}
	}
	for k := range c.entries {
		if string(k[:]) == goodToken {
			t.Fatal("cache key is the token")
		}
	}

	off := newAuthCache(auth, -1, ReviewLimits{})
	before := auth.calls.Load()
	for range 2 {
		if _, _, err := off.authenticate(ctx, goodToken, "peer"); err != nil {
			t.Fatal(err)
		}
	}
	if got := auth.calls.Load() - before; got != 2 {
		t.Errorf("uncached calls = %d, want 2", got)
	}
}

func TestNoAuthenticatorServesUnauthenticated(t *testing.T) {
	s := startServer(t)
	s.set(t, testNode, sidecarConfig(t, edsCluster("c1", time.Second)))
	d := s.delta(t)
	d.send(&discoveryv3.DeltaDiscoveryRequest{Node: xdsNode(testNode), TypeUrl: resourcev3.ClusterType})
	if got := deltaNames(d.recv()); len(got) != 1 {
		t.Fatalf("clusters = %v", got)
	}
}

func TestCallerFromContext(t *testing.T) {
	if _, ok := CallerFromContext(context.Background()); ok {
		t.Fatal("caller in an empty context")
	}
	ctx := context.WithValue(context.Background(), callerKey{}, webCaller)
	if c, ok := CallerFromContext(ctx); !ok || c != webCaller {
		t.Fatalf("CallerFromContext = %v, %v", c, ok)
	}
}
