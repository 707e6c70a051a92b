package app

import (
	"context"
	"fmt"
	"net"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/capstanmesh/capstan/xds/debug"
	"github.com/capstanmesh/capstan/xds/server"
)

// addDebug serves the debug endpoint (xds/debug) beside the xDS server when
// a debug address or listener, a serving certificate and an authorizer are
// given; it reads the server's state.
func addDebug(mgr ctrl.Manager, srv *server.Server, opts PipelineOptions) error {
	log := mgr.GetLogger().WithName("debug")
	if opts.DebugListener == nil && opts.DebugAddr == "" {
		return nil
	}
	if opts.GetCertificate == nil || opts.DebugAuthorizer == nil {
		log.Info("debug endpoint off: it needs TLS and an authorizer (xDS is served in plaintext)")
		return nil
	}
	h := debug.NewHandler(debug.Options{Logger: log, Source: srv, Authorizer: opts.DebugAuthorizer})
	// Leader-elected like the xDS server (AddPipeline): the endpoint runs
	// where the proxies' state is, and a replica without it refuses
	// connections rather than answering "no proxies".
	serve := manager.RunnableFunc(func(ctx context.Context) error {
		lis := opts.DebugListener
		if lis == nil {
			var err error
			if lis, err = net.Listen("tcp", opts.DebugAddr); err != nil {
				return fmt.Errorf("listening for the debug endpoint on %s: %w", opts.DebugAddr, err)
			}
		}
		log.Info("serving the debug endpoint over TLS", "address", lis.Addr().String())
		return debug.Serve(ctx, lis, h, opts.GetCertificate)
	})
	if err := mgr.Add(serve); err != nil {
		return fmt.Errorf("adding the debug endpoint: %w", err)
	}
	return nil
}
