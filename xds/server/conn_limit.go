package server

import (
	"net"
	"sync"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Reasons a connection is refused (Observer.ConnectionRefused).
const (
	ReasonMaxConnections        = "max_connections"
	ReasonMaxConnectionsPerPeer = "max_connections_per_peer"
)

// ConnectionRefusalReasons are the reasons Observer.ConnectionRefused is given.
var ConnectionRefusalReasons = []string{ReasonMaxConnections, ReasonMaxConnectionsPerPeer}

var connectionsOpen = prometheus.NewGauge(prometheus.GaugeOpts{
	Name: "capstan_xds_connections",
	Help: "Open connections to the xDS port, TLS handshakes included.",
})

func init() {
	metrics.Registry.MustRegister(connectionsOpen)
}

// limitListener accepts at most max connections, and perPeer per remote IP
// address; it closes the others at once. A limit <= 0 is no limit.
type limitListener struct {
	net.Listener
	max, perPeer int
	log          *logLimiter
	logger       logr.Logger
	observer     Observer

	mu     sync.Mutex
	open   int
	byPeer map[string]int
}

func newLimitListener(lis net.Listener, l Limits, logger logr.Logger, log *logLimiter, observer Observer) *limitListener {
	return &limitListener{Listener: lis, max: l.MaxConnections, perPeer: l.MaxConnectionsPerPeer,
		logger: logger, log: log, observer: observer, byPeer: map[string]int{}}
}

// Accept returns the next connection within the caps.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		peer := peerHost(conn.RemoteAddr().String())
		if reason := l.admit(peer); reason != "" {
			l.refuse(conn, peer, reason)
			continue
		}
		connectionsOpen.Inc()
		return &limitedConn{Conn: conn, release: func() { l.release(peer) }}, nil
	}
}

// admit counts a new connection of peer, or returns why it is refused.
func (l *limitListener) admit(peer string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.max > 0 && l.open >= l.max:
		return ReasonMaxConnections
	case l.perPeer > 0 && l.byPeer[peer] >= l.perPeer:
		return ReasonMaxConnectionsPerPeer
	}
	l.open++
	l.byPeer[peer]++
	return ""
}

func (l *limitListener) release(peer string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.byPeer[peer]--; l.byPeer[peer] <= 0 {
		delete(l.byPeer, peer)
	}
	connectionsOpen.Dec()
}

// refuse counts and logs the refusal before it closes the connection, so
// that whoever sees the connection closed also sees it counted.
func (l *limitListener) refuse(conn net.Conn, peer, reason string) {
	l.observer.ConnectionRefused(reason)
	if l.log.allow("conn-refused/" + peer) {
		l.logger.Info("refused xDS connection", "reason", reason, "peer", peer,
			"maxConnections", l.max, "maxConnectionsPerPeer", l.perPeer)
	}
	_ = conn.Close()
}

// limitedConn gives its slot back when it is closed, once.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
