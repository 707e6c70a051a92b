package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"

	"google.golang.org/grpc"
)

// maxExchangeHeaderBytes bounds a token exchange request's headers.
const maxExchangeHeaderBytes = 16 << 10

// alpnH2 is HTTP/2's ALPN name; gRPC clients negotiate it, HTTP/1.1 clients
// (the token exchange) do not.
const alpnH2 = "h2"

// tlsConfig serves the certificate that Options.GetCertificate returns, TLS
// 1.2 or later, and offers HTTP/2 (xDS) and HTTP/1.1 (token exchange).
func (s *Server) tlsConfig() *tls.Config {
	return &tls.Config{
		GetCertificate: s.opts.GetCertificate,
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{alpnH2, "http/1.1"},
	}
}

// serveTLS terminates TLS on lis and hands each connection on by its ALPN
// protocol: h2 to the gRPC server, anything else to the token exchange. It
// returns when lis fails or ctx is done, after stopping both servers.
func (s *Server) serveTLS(ctx context.Context, gs *grpc.Server, lis net.Listener) error {
	grpcLis, httpLis := newConnQueue(lis.Addr()), newConnQueue(lis.Addr())
	hs := &http.Server{
		Handler:           http.HandlerFunc(s.tokenExchange),
		ReadHeaderTimeout: s.opts.Limits.HandshakeTimeout,
		ReadTimeout:       s.opts.Limits.HandshakeTimeout,
		WriteTimeout:      s.opts.Limits.HandshakeTimeout,
		IdleTimeout:       s.opts.Limits.HandshakeTimeout,
		MaxHeaderBytes:    maxExchangeHeaderBytes,
	}
	errCh := make(chan error, 3)
	go func() { errCh <- ignoreClosed(gs.Serve(grpcLis)) }()
	go func() { errCh <- ignoreClosed(hs.Serve(httpLis)) }()
	go func() { errCh <- s.acceptTLS(lis, grpcLis, httpLis) }()

	var err error
	select {
	case err = <-errCh:
	case <-ctx.Done():
	}
	_ = lis.Close()
	_ = grpcLis.Close()
	_ = httpLis.Close()
	stopGracefully(gs, s.opts.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	_ = hs.Shutdown(shutdownCtx)
	return err
}

// acceptTLS accepts connections until lis is closed; each handshake runs in
// its own goroutine.
func (s *Server) acceptTLS(lis net.Listener, grpcLis, httpLis *connQueue) error {
	cfg := s.tlsConfig()
	for {
		conn, err := lis.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("accepting xDS connections: %w", err)
		}
		go s.handshake(tls.Server(conn, cfg), grpcLis, httpLis)
	}
}

// handshake completes the TLS handshake and queues the connection for the
// server of its protocol.
func (s *Server) handshake(conn *tls.Conn, grpcLis, httpLis *connQueue) {
	// The handshake is bounded, so that a client that connects and says
	// nothing does not hold a goroutine and a connection slot.
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Limits.HandshakeTimeout)
	defer cancel()
	if err := conn.HandshakeContext(ctx); err != nil {
		s.log.V(1).Info("TLS handshake failed", "peer", conn.RemoteAddr().String(), "error", truncate(err.Error()))
		_ = conn.Close()
		return
	}
	q := httpLis
	if conn.ConnectionState().NegotiatedProtocol == alpnH2 {
		q = grpcLis
	}
	if !q.put(conn) {
		_ = conn.Close()
	}
}

func ignoreClosed(err error) error {
	if err == nil || errors.Is(err, net.ErrClosed) || errors.Is(err, http.ErrServerClosed) || errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// connQueue is a net.Listener fed with connections that were accepted (and
// handshaken) elsewhere.
type connQueue struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

// put hands conn to Accept; false when the queue is closed.
func (q *connQueue) put(conn net.Conn) bool {
	select {
	case q.conns <- conn:
		return true
	case <-q.done:
		return false
	}
}

// Accept implements net.Listener.
func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.conns:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener; it may be called more than once.
func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.done) })
	return nil
}

// Addr implements net.Listener.
func (q *connQueue) Addr() net.Addr { return q.addr }
