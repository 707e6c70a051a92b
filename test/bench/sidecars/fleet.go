package sidecars

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/stats"
)

// maxRecvBytes lets a state-of-the-world response of a large mesh through.
const maxRecvBytes = 512 << 20

// Fleet is the set of simulated sidecars of one process.
type Fleet struct {
	index   *index
	proxies []*proxy
	conns   []*grpc.ClientConn
	bytes   atomic.Int64
	// resent counts resources received that the proxy already held, identical.
	resent atomic.Int64
	wg     sync.WaitGroup

	mu       sync.Mutex
	complete []time.Time
	gen      int
	exp      atomic.Pointer[expectation]
}

// NewFleet returns an empty fleet.
func NewFleet() *Fleet { return &Fleet{index: newIndex()} }

// expectation is an armed Expectation and who met it when.
type expectation struct {
	gen      int
	spec     Expectation
	affected map[string]bool // nil: every proxy
	met      map[string]time.Time
}

func (e *expectation) metBy(typeURL string, updated []*info) bool {
	switch {
	case e.spec.NewIP != "" && typeURL == resource.EndpointType:
		return slices.ContainsFunc(updated, func(in *info) bool { _, ok := slices.BinarySearch(in.ips, e.spec.NewIP); return ok })
	case e.spec.Split != "" && typeURL == resource.RouteType:
		return slices.ContainsFunc(updated, func(in *info) bool { _, ok := slices.BinarySearch(in.splits, e.spec.Split); return ok })
	}
	return false
}

// connect dials one connection and opens one stream per node.
func (f *Fleet) connect(ctx context.Context, cmd Command) error {
	creds, err := transportCredentials(cmd)
	if err != nil {
		return err
	}
	for i, id := range cmd.Nodes {
		conn, err := grpc.NewClient(cmd.Addr, grpc.WithTransportCredentials(creds), grpc.WithContextDialer(dialFrom(i)),
			grpc.WithStatsHandler(byteCounter{&f.bytes}),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvBytes)))
		if err != nil {
			return fmt.Errorf("dialing %s: %w", cmd.Addr, err)
		}
		p := newProxy(id, f)
		f.proxies = append(f.proxies, p)
		f.conns = append(f.conns, conn)
		run := p.runDelta
		if cmd.SotW {
			run = p.runSotW
		}
		f.wg.Go(func() {
			if err := run(ctx, conn); err != nil && ctx.Err() == nil {
				p.fail(err)
			}
		})
	}
	return nil
}

// dialFrom dials from loopback address 127.0.x.y, one per proxy, as
// proxies on different pods have different addresses (the server limits
// connections per peer address).
func dialFrom(i int) func(context.Context, string) (net.Conn, error) {
	local := &net.TCPAddr{IP: net.IPv4(127, 0, byte(1+i/250), byte(2+i%250))}
	return func(ctx context.Context, addr string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: local}
		return d.DialContext(ctx, "tcp", addr)
	}
}

func transportCredentials(cmd Command) (credentials.TransportCredentials, error) {
	if len(cmd.CAPEM) == 0 {
		return insecure.NewCredentials(), nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(cmd.CAPEM) {
		return nil, errors.New("the CA PEM holds no certificate")
	}
	return credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: cmd.ServerName, MinVersion: tls.VersionTLS12}), nil
}

func (f *Fleet) recordComplete(at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.complete = append(f.complete, at)
}

func (f *Fleet) currentExpectation() *expectation { return f.exp.Load() }

func (f *Fleet) recordMet(e *expectation, id string, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e.affected == nil || e.affected[id] {
		e.met[id] = at
	}
}

// arm installs a new expectation and returns the number of proxies it affects.
// The proxies' locks are taken before the fleet's, never inside it.
func (f *Fleet) arm(spec Expectation) int {
	var affected map[string]bool
	if spec.OldIP != "" {
		affected = f.holdersOf(spec.OldIP)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gen++
	e := &expectation{gen: f.gen, spec: spec, affected: affected, met: map[string]time.Time{}}
	f.exp.Store(e)
	if e.affected == nil {
		return len(f.proxies)
	}
	return len(e.affected)
}

// holdersOf are the proxies that hold an endpoint assignment with ip.
func (f *Fleet) holdersOf(ip string) map[string]bool {
	out := map[string]bool{}
	for _, p := range f.proxies {
		p.mu.Lock()
		for _, in := range p.have[resource.EndpointType] {
			if _, ok := slices.BinarySearch(in.ips, ip); ok {
				out[p.id] = true
				break
			}
		}
		p.mu.Unlock()
	}
	return out
}

// streamErrors are the first few stream failures.
func (f *Fleet) streamErrors() []string {
	var out []string
	for _, p := range f.proxies {
		p.mu.Lock()
		if p.err != nil && len(out) < 5 {
			out = append(out, p.id+": "+p.err.Error())
		}
		p.mu.Unlock()
	}
	return out
}

func (f *Fleet) close() {
	for _, c := range f.conns {
		_ = c.Close()
	}
}

// byteCounter counts the payload bytes received on a connection.
type byteCounter struct{ n *atomic.Int64 }

func (b byteCounter) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }

func (b byteCounter) HandleRPC(_ context.Context, s stats.RPCStats) {
	if in, ok := s.(*stats.InPayload); ok {
		b.n.Add(int64(in.WireLength))
	}
}

func (b byteCounter) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

func (b byteCounter) HandleConn(context.Context, stats.ConnStats) {}
