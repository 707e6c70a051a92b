package debug

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

const (
	readHeaderTimeout = 10 * time.Second
	shutdownTimeout   = 5 * time.Second
)

// Serve serves h over TLS on lis, with the certificate getCert returns for
// each handshake, until ctx is done.
func Serve(ctx context.Context, lis net.Listener, h http.Handler, getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) error {
	if getCert == nil {
		return errors.New("the debug endpoint needs a serving certificate")
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: getCert, NextProtos: []string{"h2", "http/1.1"}},
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errCh := make(chan error, 1)
	go func() { errCh <- srv.ServeTLS(lis, "", "") }()
	select {
	case err := <-errCh:
		return fmt.Errorf("serving the debug endpoint on %s: %w", lis.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("stopping the debug endpoint: %w", err)
	}
	if err := <-errCh; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving the debug endpoint on %s: %w", lis.Addr(), err)
	}
	return nil
}
