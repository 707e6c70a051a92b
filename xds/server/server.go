// Package server is Capstan's xDS server: one content-versioned snapshot per
// proxy in go-control-plane's snapshot cache, served over ADS (state of the
// world and delta) and the per-type discovery services, with per-proxy
// connection, ACK and NACK state recorded from the stream callbacks.
package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointservice "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	secretservice "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"k8s.io/utils/clock"
)

const defaultShutdownTimeout = 10 * time.Second

// Options configure a Server.
type Options struct {
	Logger logr.Logger
	// ServerOptions are added to the gRPC server's options, after the
	// ones Limits sets (keepalive, stream limits), so they can override them.
	// Transport credentials and interceptors go here.
	ServerOptions []grpc.ServerOption
	// OnStatusChange, when set, is called with a node ID after that node's
	// ProxyStatus changed: streams opened or closed, an ACK or a NACK, config
	// published or removed. It runs on the stream's goroutine and must not
	// block; read the status itself with ProxyStatus.
	OnStatusChange func(nodeID string)
	// ShutdownTimeout bounds the graceful stop once Serve's context is
	// done; after it, remaining connections are closed. Default 10s.
	ShutdownTimeout time.Duration
	// Authenticator, when set, authenticates every stream by its bearer
	// token and binds it to the pod the token names (see auth.go); nil
	// serves every stream unauthenticated (tests of other things).
	Authenticator Authenticator
	// Pods looks up the pods that node IDs name. With an Authenticator and
	// no Pods, every stream is refused.
	Pods PodLookup
	// GetCertificate, when set, turns TLS on: it returns the serving
	// certificate for each handshake (so a renewed certificate is used for
	// new connections at once). Clients that negotiate HTTP/2 get xDS;
	// HTTP/1.1 clients get the token exchange (TokenExchangePath) when an
	// Authenticator is set. nil serves plaintext gRPC (tests, local runs).
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// AuthCacheTTL is how long a successful authentication is reused for
	// the same token: 0 means DefaultAuthCacheTTL, negative no caching.
	AuthCacheTTL time.Duration
	// Limits bound connections and streams on the xDS port; zero fields
	// take the defaults (see Limits).
	Limits Limits
	// RecheckInterval is how often open authenticated streams are checked
	// again (pod deleted or replaced, token expired); RecheckPod checks one
	// pod's at once. Default DefaultRecheckInterval.
	RecheckInterval time.Duration
	// Clock is the server's time source (tests); default the real clock.
	Clock clock.WithTicker
	// ReviewLimits bound the token reviews (in flight, per peer, refusal
	// cache); zero fields take the defaults.
	ReviewLimits ReviewLimits
	// Observer is told of connections, pushes, NACKs and convergence, for
	// metrics; nil tells nobody.
	Observer Observer
}

// Server serves xDS from one snapshot per proxy. It is safe for concurrent use.
type Server struct {
	log  logr.Logger
	opts Options
	// sidecars is the cache of every node but proxyless gRPC clients.
	sidecars *resourceCache
	// grpcCache holds the snapshots of proxyless gRPC clients (grpc~ node
	// IDs). It is not in ADS mode: a gRPC client asks for the resources of
	// the names it dials, a subset of its snapshot, and an ADS-mode cache
	// answers a state-of-the-world request only when it names them all.
	grpcCache cachev3.SnapshotCache
	tracker   *tracker
	// auth is nil when streams are not authenticated.
	auth *authCache
	// logLimit rate-limits the log lines a client can cause.
	logLimit *logLimiter
	clock    clock.WithTicker
	// streams are the open authenticated streams, checked again
	// periodically and by RecheckPod.
	streams streamSet
	// observer is Options.Observer (nopObserver when nil); convergence
	// measures changes for it (TrackConvergence).
	observer    Observer
	convergence *convergence

	// publishMu serialises SetProxyResources and RemoveProxy, so that the
	// cache and configs change together.
	publishMu sync.Mutex
	// mu guards configs; the stream callbacks read it.
	mu      sync.RWMutex
	configs map[string]*proxyConfig
	// interned are the resources validated and hashed so far.
	interned *internTable
	// consistent are the configurations that passed the reference check.
	consistent consistentConfigs

	instances atomic.Int64
}

// New returns a Server with an empty cache.
func New(opts Options) *Server {
	log := opts.Logger
	if log.GetSink() == nil {
		log = logr.Discard()
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = defaultShutdownTimeout
	}
	opts.Limits = opts.Limits.WithDefaults()
	if opts.RecheckInterval <= 0 {
		opts.RecheckInterval = DefaultRecheckInterval
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	var auth *authCache
	if opts.Authenticator != nil {
		ttl := opts.AuthCacheTTL
		if ttl == 0 {
			ttl = DefaultAuthCacheTTL
		}
		auth = newAuthCache(opts.Authenticator, ttl, opts.ReviewLimits)
		auth.now = opts.Clock.Now
	}
	if opts.Observer == nil {
		opts.Observer = nopObserver{}
	}
	limit := newLogLimiter()
	cpLog := cpLogger{log: log, limit: limit}
	s := &Server{
		auth:     auth,
		logLimit: limit,
		clock:    opts.Clock,
		log:      log,
		opts:     opts,
		interned: &internTable{},
		sidecars: newResourceCache(),
		// IDHash: the snapshot key is the full node ID.
		grpcCache: cachev3.NewSnapshotCache(false, cachev3.IDHash{}, cpLog),
		configs:   map[string]*proxyConfig{},
		observer:  opts.Observer,
	}
	s.tracker = newTracker(log, s.statusChanged, limit)
	s.tracker.shared = s.sharedVersions
	s.tracker.observer = opts.Observer
	s.convergence = newConvergence(opts.Observer.Converged, opts.Clock.Now, s.tracker.settled)
	return s
}

// statusChanged is the tracker's hook: a node's status changed.
func (s *Server) statusChanged(nodeID string) {
	s.convergence.nodeChanged(nodeID)
	if s.opts.OnStatusChange != nil {
		s.opts.OnStatusChange(nodeID)
	}
}

// Cache classes of muxCache.
const (
	cacheSidecar = "sidecar"
	cacheGRPC    = "grpc"
)

// muxCache serves proxyless gRPC clients from grpcCache and every other node
// from sidecars, by node ID. The stream fills in the node of requests that omit it.
func (s *Server) muxCache() *cachev3.MuxCache {
	return &cachev3.MuxCache{
		Classify:      func(r *cachev3.Request) string { return cacheClass(r.GetNode().GetId()) },
		ClassifyDelta: func(r *cachev3.DeltaRequest) string { return cacheClass(r.GetNode().GetId()) },
		Caches: map[string]cachev3.Cache{
			cacheSidecar: s.sidecars,
			cacheGRPC:    s.grpcCache,
		},
	}
}

func cacheClass(nodeID string) string {
	if isProxylessID(nodeID) {
		return cacheGRPC
	}
	return cacheSidecar
}

// Serve serves xDS on lis until ctx is done, then stops gracefully.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	gs := s.newGRPCServer(ctx)
	lis = newLimitListener(lis, s.opts.Limits, s.log, s.logLimit, s.observer)
	if s.auth != nil {
		rctx, stop := context.WithCancel(ctx)
		defer stop()
		go s.recheckPeriodically(rctx)
	}
	if s.opts.GetCertificate != nil {
		s.log.Info("serving xDS over TLS", "address", lis.Addr().String(), "tokenExchange", s.auth != nil)
		if err := s.serveTLS(ctx, gs, lis); err != nil {
			return fmt.Errorf("serving xDS on %s: %w", lis.Addr(), err)
		}
		return nil
	}
	errCh := make(chan error, 1)
	go func() { errCh <- gs.Serve(lis) }()
	s.log.Info("serving xDS", "address", lis.Addr().String())

	select {
	case err := <-errCh:
		return fmt.Errorf("serving xDS on %s: %w", lis.Addr(), err)
	case <-ctx.Done():
	}
	stopGracefully(gs, s.opts.ShutdownTimeout)
	if err := <-errCh; err != nil {
		return fmt.Errorf("serving xDS on %s: %w", lis.Addr(), err)
	}
	return nil
}

// newGRPCServer registers ADS and the per-type services. Their streams end
// when ctx is done, which lets the graceful stop complete.
func (s *Server) newGRPCServer(ctx context.Context) *grpc.Server {
	cb := &callbacks{instance: s.instances.Add(1), tracker: s.tracker, lookup: s.publishedResources, observer: s.observer}
	if s.auth != nil {
		cb.refuseFetch = s.refuseUnaryCall
	}
	xds := serverv3.NewServer(ctx, s.muxCache(), cb)
	gsOpts := s.opts.Limits.serverOptions()
	if s.auth != nil {
		// First of the chained interceptors, so ServerOptions' chained
		// interceptors see only authenticated streams (a non-chained
		// grpc.StreamInterceptor in ServerOptions would run before it).
		// Unary calls (the Fetch RPCs) are refused outright; the
		// callbacks' OnFetchRequest refuses them as a second line.
		gsOpts = append(gsOpts, grpc.ChainStreamInterceptor(s.streamAuth), grpc.ChainUnaryInterceptor(s.refuseUnary))
	}
	gs := grpc.NewServer(append(gsOpts, s.opts.ServerOptions...)...)
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(gs, xds)
	listenerservice.RegisterListenerDiscoveryServiceServer(gs, xds)
	routeservice.RegisterRouteDiscoveryServiceServer(gs, xds)
	clusterservice.RegisterClusterDiscoveryServiceServer(gs, xds)
	endpointservice.RegisterEndpointDiscoveryServiceServer(gs, xds)
	secretservice.RegisterSecretDiscoveryServiceServer(gs, xds)
	return gs
}

func stopGracefully(gs *grpc.Server, timeout time.Duration) {
	done := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(done)
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		gs.Stop()
		<-done
	}
}

// ProxyStatuses returns the status of every known node, sorted by node ID.
// A node is known while it has an open stream or published config.
func (s *Server) ProxyStatuses() []ProxyStatus {
	return s.tracker.statuses()
}

// InSyncProxies counts the nodes for which ProxyStatus.InSync holds.
func (s *Server) InSyncProxies() int {
	return s.tracker.count(ProxyStatus.InSync)
}

// AckStates returns the ACK summary of every known node, by node ID, under
// one lock and without copying the nodes' per-resource maps.
func (s *Server) AckStates() map[string]AckState {
	return s.tracker.ackStates()
}

// ConnectedByKind counts the nodes with an open stream by the kind their
// node ID starts with ("sidecar", "grpc", …).
func (s *Server) ConnectedByKind() map[string]int {
	return s.tracker.connectedByKind()
}

// OpenStreams returns the number of open xDS streams of a node; unlike
// ProxyStatus it copies nothing.
func (s *Server) OpenStreams(nodeID string) int {
	return s.tracker.openStreams(nodeID)
}

// ProxyStatus returns the status of one node.
func (s *Server) ProxyStatus(nodeID string) (ProxyStatus, bool) {
	return s.tracker.status(nodeID)
}
