package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/capstanmesh/capstan/controllers"
	"github.com/capstanmesh/capstan/controllers/inputs"
	"github.com/capstanmesh/capstan/controllers/meshstatus"
	"github.com/capstanmesh/capstan/internal/meshmetrics"
	"github.com/capstanmesh/capstan/xds/auth"
	"github.com/capstanmesh/capstan/xds/runner"
	"github.com/capstanmesh/capstan/xds/server"
)

// PipelineOptions configure the xDS side of the operator.
type PipelineOptions struct {
	// Listener serves xDS; when nil, Addr is listened on.
	Listener net.Listener
	Addr     string
	// ServerOptions are passed to the gRPC server (TLS, interceptors).
	ServerOptions []grpc.ServerOption
	Debounce      time.Duration
	MaxDelay      time.Duration
	// Authenticator and Pods turn stream authentication on (see
	// server.Options); GetCertificate turns TLS on and, with an
	// Authenticator, the token exchange.
	Authenticator  auth.Authenticator
	Pods           auth.PodLookup
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// Limits bound connections and streams on the xDS port, ReviewLimits
	// the token reviews; zero fields take the server's defaults.
	Limits       server.Limits
	ReviewLimits server.ReviewLimits
	// RecheckInterval is server.Options.RecheckInterval.
	RecheckInterval time.Duration
	// Secrets, when set, issues workload certificates for connected proxies
	// and the runner delivers them over SDS (certificates.Manager).
	Secrets runner.SecretSource
	// MeshStatus is the Mesh's status writer, shared with the certificate
	// manager (controllers.NewMeshStatusWriter when nil).
	MeshStatus *meshstatus.Writer
	// MeshStatusInterval is how often the Mesh's run-time status (connected
	// proxies, earliest certificate expiry) is refreshed
	// (controllers.DefaultMeshRuntimeInterval when zero).
	MeshStatusInterval time.Duration
	// DebugListener, else DebugAddr, serves the debug endpoint
	// (xds/debug) over TLS with GetCertificate's certificate, authorizing
	// every request with DebugAuthorizer; off when neither is set or
	// without a certificate or authorizer.
	DebugListener   net.Listener
	DebugAddr       string
	DebugAuthorizer auth.DebugAuthorizer
	// XDSObserver records the xDS server's connections, pushes, NACKs and
	// convergence (meshmetrics.XDS(), on the manager's metrics endpoint,
	// when nil).
	XDSObserver meshmetrics.XDSObserver
}

// expiryReporter is implemented by the certificate manager.
type expiryReporter interface {
	EarliestWorkloadExpiry() (time.Time, bool)
}

// AddPipeline wires the pipeline into mgr: the inputs controller feeds the
// runner, the runner publishes to the xDS server and hands statuses to the
// status reconcilers. It returns the server so callers can read proxy state.
func AddPipeline(mgr ctrl.Manager, opts PipelineOptions) (*server.Server, error) {
	log := mgr.GetLogger().WithName("xds")
	store := controllers.NewStatusStore()
	var r *runner.Runner
	if opts.XDSObserver == nil {
		opts.XDSObserver = meshmetrics.XDS()
		meshmetrics.DeclareRefusalReasons(server.StreamRefusalReasons, server.ConnectionRefusalReasons)
	}
	srv := server.New(server.Options{
		Logger:          log.WithName("server"),
		ServerOptions:   opts.ServerOptions,
		OnStatusChange:  func(id string) { r.ProxyStatusChanged(id) },
		Authenticator:   opts.Authenticator,
		Pods:            opts.Pods,
		GetCertificate:  opts.GetCertificate,
		Limits:          opts.Limits,
		ReviewLimits:    opts.ReviewLimits,
		RecheckInterval: opts.RecheckInterval,
		Observer:        opts.XDSObserver,
	})
	r = runner.New(runner.Options{
		Logger: log.WithName("runner"), Publisher: srv, Statuses: store, Sync: srv, Acks: serverAcks{srv},
		Debounce: opts.Debounce, MaxDelay: opts.MaxDelay,
		Secrets: opts.Secrets, Connections: srv, Convergence: srv,
	})
	if err := (&inputs.Reconciler{Client: mgr.GetClient(), Sink: r}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up the inputs controller: %w", err)
	}
	if opts.MeshStatus == nil {
		opts.MeshStatus = controllers.NewMeshStatusWriter(mgr)
	}
	if err := controllers.SetupWithStatusStore(mgr, store, opts.MeshStatus); err != nil {
		return nil, err
	}
	if err := mgr.Add(meshRuntimeReporter(srv, opts)); err != nil {
		return nil, fmt.Errorf("adding the Mesh run-time status reporter: %w", err)
	}
	if err := mgr.Add(r); err != nil {
		return nil, fmt.Errorf("adding the runner: %w", err)
	}
	if err := addDebug(mgr, srv, opts); err != nil {
		return nil, err
	}
	serve := manager.RunnableFunc(func(ctx context.Context) error { return serveXDS(ctx, srv, opts) })
	if err := mgr.Add(serve); err != nil {
		return nil, fmt.Errorf("adding the xDS server: %w", err)
	}
	return srv, nil
}

func serveXDS(ctx context.Context, srv *server.Server, opts PipelineOptions) error {
	lis := opts.Listener
	if lis == nil {
		var err error
		if lis, err = net.Listen("tcp", opts.Addr); err != nil {
			return fmt.Errorf("listening for xDS on %s: %w", opts.Addr, err)
		}
	}
	if err := srv.Serve(ctx, lis); err != nil {
		return fmt.Errorf("serving xDS: %w", err)
	}
	return nil
}

// serverAcks gives the runner the server's ACK states.
type serverAcks struct{ srv *server.Server }

// ProxyAcks implements runner.AckSource.
func (a serverAcks) ProxyAcks() map[string]runner.ProxyAck {
	states := a.srv.AckStates()
	out := make(map[string]runner.ProxyAck, len(states))
	for id, st := range states {
		out[id] = runner.ProxyAck{InSync: st.InSync, NackType: st.NackType, NackMessage: st.Nack.Message}
	}
	return out
}

// meshRuntimeReporter reports the server's connected proxies and, when the
// certificate manager issues them, the earliest workload certificate expiry.
func meshRuntimeReporter(srv *server.Server, opts PipelineOptions) *controllers.MeshRuntimeReporter {
	rt := controllers.MeshRuntime{Connected: srv.ConnectedByKind}
	if e, ok := opts.Secrets.(expiryReporter); ok {
		rt.EarliestExpiry = e.EarliestWorkloadExpiry
	}
	return &controllers.MeshRuntimeReporter{Status: opts.MeshStatus, Runtime: rt, Interval: opts.MeshStatusInterval}
}
