package server

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// Defaults of Limits.
const (
	DefaultMaxConcurrentStreams  = 100
	DefaultMaxRecvMsgSize        = 1 << 20
	DefaultHandshakeTimeout      = 10 * time.Second
	DefaultMaxConnectionIdle     = 5 * time.Minute
	DefaultMaxConnectionAge      = 30 * time.Minute
	DefaultMaxConnectionAgeGrace = time.Minute
	DefaultMaxConnections        = 4096
	DefaultMaxConnectionsPerPeer = 32
)

// Keepalive: the server pings an idle transport every keepaliveTime and
// drops it when the ping is not answered within keepaliveTimeout; clients
// may ping every keepaliveMinTime at most, also without a stream.
const (
	keepaliveTime    = 30 * time.Second
	keepaliveTimeout = 10 * time.Second
	keepaliveMinTime = 15 * time.Second
)

// connReadBuffer is each connection's read buffer. A sidecar's connection
// mostly carries small ACKs, and gRPC's default of 32 KiB per connection
// was a fifth of the control plane's heap per connected proxy; larger
// requests take a few more reads. (gRPC releases a connection's write
// buffer after each flush by default, so an idle stream holds none.)
const connReadBuffer = 4 << 10

// Limits bound what one client can hold on the xDS port. Zero fields take
// the defaults; a negative duration or count turns that limit off.
type Limits struct {
	// MaxConcurrentStreams per connection. ADS needs one stream per
	// connection; a client of the per-type services one per type.
	MaxConcurrentStreams int
	// MaxRecvMsgSize is the largest request accepted, in bytes. A delta
	// reconnect lists every resource it holds of a type (name and 64-hex
	// version); 1 MiB fits several thousand.
	MaxRecvMsgSize int
	// HandshakeTimeout bounds the TLS handshake and the HTTP/2 preface of
	// a new connection, and each token exchange request (and the idle time
	// between two on one connection). It cannot be turned off.
	HandshakeTimeout time.Duration
	// MaxConnectionIdle closes a connection with no stream for this long.
	MaxConnectionIdle time.Duration
	// MaxConnectionAge closes every connection after about this long (gRPC
	// adds ±10% jitter), after MaxConnectionAgeGrace for its streams: the
	// proxy reconnects, authenticates again and keeps its config (delta
	// clients resume from the versions they hold).
	MaxConnectionAge      time.Duration
	MaxConnectionAgeGrace time.Duration
	// MaxConnections and MaxConnectionsPerPeer (per remote IP address) cap
	// the open connections, TLS handshakes included; more are closed at
	// once, counted in capstan_xds_connections_refused_total.
	MaxConnections        int
	MaxConnectionsPerPeer int
}

// WithDefaults returns l with its zero fields set to the defaults.
func (l Limits) WithDefaults() Limits {
	l.MaxConcurrentStreams = orDefault(l.MaxConcurrentStreams, DefaultMaxConcurrentStreams)
	l.MaxRecvMsgSize = orDefault(l.MaxRecvMsgSize, DefaultMaxRecvMsgSize)
	if l.HandshakeTimeout <= 0 {
		l.HandshakeTimeout = DefaultHandshakeTimeout
	}
	l.MaxConnectionIdle = orDefault(l.MaxConnectionIdle, DefaultMaxConnectionIdle)
	l.MaxConnectionAge = orDefault(l.MaxConnectionAge, DefaultMaxConnectionAge)
	l.MaxConnectionAgeGrace = orDefault(l.MaxConnectionAgeGrace, DefaultMaxConnectionAgeGrace)
	l.MaxConnections = orDefault(l.MaxConnections, DefaultMaxConnections)
	l.MaxConnectionsPerPeer = orDefault(l.MaxConnectionsPerPeer, DefaultMaxConnectionsPerPeer)
	return l
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// serverOptions are the gRPC server's options for l (after withDefaults).
func (l Limits) serverOptions() []grpc.ServerOption {
	params := keepalive.ServerParameters{Time: keepaliveTime, Timeout: keepaliveTimeout}
	if l.MaxConnectionIdle > 0 {
		params.MaxConnectionIdle = l.MaxConnectionIdle
	}
	if l.MaxConnectionAge > 0 {
		params.MaxConnectionAge = l.MaxConnectionAge
		// gRPC reads a zero grace as no limit: a negative grace turns it off.
		params.MaxConnectionAgeGrace = max(0, l.MaxConnectionAgeGrace)
	}
	opts := []grpc.ServerOption{
		grpc.KeepaliveParams(params),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: keepaliveMinTime, PermitWithoutStream: true}),
		grpc.ReadBufferSize(connReadBuffer),
	}
	if l.MaxConcurrentStreams > 0 {
		opts = append(opts, grpc.MaxConcurrentStreams(uint32(l.MaxConcurrentStreams)))
	}
	if l.MaxRecvMsgSize > 0 {
		opts = append(opts, grpc.MaxRecvMsgSize(l.MaxRecvMsgSize))
	}
	opts = append(opts, grpc.ConnectionTimeout(l.HandshakeTimeout))
	return opts
}
