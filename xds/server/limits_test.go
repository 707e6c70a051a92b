package server

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// unauthenticated serves opts without authentication (the limits apply all
// the same) and returns the address.
func unauthenticated(t *testing.T, opts Options) *authEnv {
	t.Helper()
	return startOptsServer(t, opts)
}

// TestStreamCapRefusesExtraStreams opens streams on one HTTP/2 connection
// by hand (a gRPC client would wait for quota): past MaxConcurrentStreams
// the server resets the stream with REFUSED_STREAM.
func TestStreamCapRefusesExtraStreams(t *testing.T) {
	e := unauthenticated(t, Options{Limits: Limits{MaxConcurrentStreams: 2}})
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var hdr bytes.Buffer
	enc := hpack.NewEncoder(&hdr)
	for _, f := range [][2]string{
		{":method", "POST"}, {":scheme", "http"}, {":authority", "xds"},
		{":path", "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"},
		{"content-type", "application/grpc"}, {"te", "trailers"},
	} {
		if err := enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []uint32{1, 3, 5} {
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hdr.Bytes(), EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
	}
	_ = conn.SetReadDeadline(time.Now().Add(waitTimeout))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("no RST_STREAM for the third stream: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if v, ok := f.Value(http2.SettingMaxConcurrentStreams); ok && v != 2 {
				t.Errorf("SETTINGS_MAX_CONCURRENT_STREAMS = %d, want 2", v)
			}
		case *http2.RSTStreamFrame:
			if f.StreamID != 5 || f.ErrCode != http2.ErrCodeRefusedStream {
				t.Fatalf("RST_STREAM %d %v, want stream 5 REFUSED_STREAM", f.StreamID, f.ErrCode)
			}
			return
		}
	}
}

// TestOversizeRequestIsRefused: a request above MaxRecvMsgSize (default
// 1 MiB) ends the stream with ResourceExhausted.
func TestOversizeRequestIsRefused(t *testing.T) {
	ts := startServer(t)
	ts.set(t, testNode, sidecarConfig(t, edsCluster("c1", time.Second)))
	d := ts.delta(t)
	names := make([]string, 0, 20000)
	for i := 0; len(names) < cap(names); i++ {
		names = append(names, strings.Repeat("x", 60)+string(rune('a'+i%26)))
	}
	// About 1.3 MB: more than a megabyte of resource names.
	_ = d.stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: xdsNode(testNode), TypeUrl: resourcev3.ClusterType, ResourceNamesSubscribe: names})
	if err := d.recvErr(); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("oversize request: %v, want ResourceExhausted", err)
	}
	// A request of ordinary size on a new stream is still served.
	d = ts.delta(t)
	d.send(&discoveryv3.DeltaDiscoveryRequest{Node: xdsNode(testNode), TypeUrl: resourcev3.ClusterType})
	if got := deltaNames(d.recv()); len(got) != 1 {
		t.Fatalf("clusters = %v", got)
	}
}

// connectionsRefusedCount is how many connections the test servers refused
// for reason (capstan_xds_connections_refused_total{reason} in the manager).
func connectionsRefusedCount(t *testing.T, reason string) float64 {
	t.Helper()
	if !slices.Contains(ConnectionRefusalReasons, reason) {
		t.Fatalf("%s is not in ConnectionRefusalReasons", reason)
	}
	return refusals.count("connection/" + reason)
}

func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// waitClosed waits until the server closes conn (a read returns EOF or a
// reset) and fails if it is still open at the deadline.
func waitClosed(t *testing.T, conn net.Conn) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(waitTimeout))
	buf := make([]byte, 4096)
	for {
		_, err := conn.Read(buf)
		var ne net.Error
		switch {
		case err == nil:
			continue
		case errors.As(err, &ne) && ne.Timeout():
			t.Fatalf("connection still open after %s", waitTimeout)
		default:
			return
		}
	}
}

func TestConnectionCapsRefuseExtraConnections(t *testing.T) {
	e := unauthenticated(t, Options{Limits: Limits{MaxConnections: 3, MaxConnectionsPerPeer: 1}})
	perPeer := connectionsRefusedCount(t, ReasonMaxConnectionsPerPeer)
	total := connectionsRefusedCount(t, ReasonMaxConnections)

	dialFrom(t, "127.0.0.1", e.addr)
	waitClosed(t, dialFrom(t, "127.0.0.1", e.addr)) // a second from the same peer
	dialFrom(t, "127.0.0.2", e.addr)                // another peer: accepted
	dialFrom(t, "127.0.0.3", e.addr)                // a third peer: accepted, the cap is reached
	waitClosed(t, dialFrom(t, "127.0.0.4", e.addr)) // over the cap
	if got := connectionsRefusedCount(t, ReasonMaxConnectionsPerPeer); got != perPeer+1 {
		t.Errorf("refused per peer: %v, want %v", got, perPeer+1)
	}
	if got := connectionsRefusedCount(t, ReasonMaxConnections); got != total+1 {
		t.Errorf("refused over the cap: %v, want %v", got, total+1)
	}
	if !strings.Contains(e.logs.String(), `"refused xDS connection" "reason"="max_connections"`) {
		t.Errorf("refusal not logged:\n%s", e.logs.String())
	}
}

// TestHandshakeTimeoutClosesSilentConnections: a client that connects and
// says nothing is closed after HandshakeTimeout, on the TLS port (where
// the handshake is ours) as on plaintext gRPC (the HTTP/2 preface).
func TestHandshakeTimeoutClosesSilentConnections(t *testing.T) {
	cert, _ := servingCert(t)
	tlsEnv := startOptsServer(t, Options{Limits: Limits{HandshakeTimeout: 50 * time.Millisecond},
		Authenticator: defaultAuth(), Pods: defaultPods(),
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil }})
	waitClosed(t, dialFrom(t, "127.0.0.1", tlsEnv.addr))
	plain := unauthenticated(t, Options{Limits: Limits{HandshakeTimeout: 50 * time.Millisecond}})
	waitClosed(t, dialFrom(t, "127.0.0.1", plain.addr))
}

// TestMaxConnectionAgeReconnectsWithSameConfig: with a short maximum age
// the server ends the stream; the client reconnects and receives the same
// config.
func TestMaxConnectionAgeReconnectsWithSameConfig(t *testing.T) {
	e := unauthenticated(t, Options{Limits: Limits{MaxConnectionAge: time.Second, MaxConnectionAgeGrace: 100 * time.Millisecond}})
	if _, err := e.SetProxyResources(testNode, sidecarConfig(t, edsCluster("c1", time.Second))); err != nil {
		t.Fatal(err)
	}
	first := e.deltaStream(t)
	first.send(&discoveryv3.DeltaDiscoveryRequest{Node: xdsNode(testNode), TypeUrl: resourcev3.ClusterType})
	want := first.recv().GetResources()[0].GetVersion()
	if err := first.recvErr(); status.Code(err) != codes.Unavailable {
		t.Fatalf("stream past the maximum age ended with %v, want Unavailable", err)
	}
	// Reconnect (a proxy retries); a try may itself outlive the short age.
	eventually(t, "the same config after reconnecting", func() bool {
		d := e.deltaStream(t)
		defer d.close()
		if err := d.stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: xdsNode(testNode), TypeUrl: resourcev3.ClusterType}); err != nil {
			return false
		}
		select {
		case resp := <-d.resps:
			r := resp.GetResources()
			return len(r) == 1 && r[0].GetName() == "c1" && r[0].GetVersion() == want
		case err := <-d.errs:
			t.Logf("reconnect attempt ended: %v", err)
			return false
		case <-time.After(waitTimeout):
			return false
		}
	})
}
