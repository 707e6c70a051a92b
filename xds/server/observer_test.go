package server

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// recorder is an Observer that remembers the events (the metrics
// themselves are checked against the real registry in test/integration).
type recorder struct {
	// nopObserver: refusals are counted by refusalCounter (auth_test.go).
	nopObserver
	mu     sync.Mutex
	events []string
	// converged are the Converged durations.
	converged []time.Duration
}

func (r *recorder) add(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) ProxyConnected(kind string)    { r.add("connected " + kind) }
func (r *recorder) ProxyDisconnected(kind string) { r.add("disconnected " + kind) }
func (r *recorder) Pushed(typ string)             { r.add("pushed " + typ) }
func (r *recorder) NACKed(typ string)             { r.add("nacked " + typ) }
func (r *recorder) Converged(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.converged = append(r.converged, d)
}

// count returns how many times event was recorded, and how many
// convergences.
func (r *recorder) count(event string) (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e == event {
			n++
		}
	}
	return n, len(r.converged)
}

// versionedNode is testNode with the sidecar version in its metadata.
func versionedNode() *corev3.Node {
	return &corev3.Node{Id: testNode, Metadata: &structpb.Struct{Fields: map[string]*structpb.Value{
		nodeMetaVersion: structpb.NewStringValue("1.2.3"),
	}}}
}

// TestObserverAndProxyLogLines: a real ADS stream connects, ACKs, NACKs
// and closes. The Observer hears each event once, a change converges when
// the proxy ACKs it and not when it NACKs it, and the log has one line per
// connect, NACK and disconnect with the standard keys.
func TestObserverAndProxyLogLines(t *testing.T) {
	rec := &recorder{}
	e := startOptsServer(t, Options{Observer: rec})
	if _, err := e.SetProxyResources(testNode, sidecarConfig(t, edsCluster("c1", time.Second))); err != nil {
		t.Fatal(err)
	}
	s := e.sotwStream(t)
	s.send(&discoveryv3.DiscoveryRequest{Node: versionedNode(), TypeUrl: resourcev3.ClusterType})
	resp := s.recv()
	s.send(ackOf(resp))
	e.waitAcked(t, resourcev3.ClusterType, resp.GetVersionInfo())
	wantCount(t, rec, "connected Sidecar", 1)
	wantCount(t, rec, "pushed Cluster", 1)

	// A change the proxy ACKs converges once.
	observed := time.Now()
	if _, err := e.SetProxyResources(testNode, sidecarConfig(t, edsCluster("c1", 2*time.Second))); err != nil {
		t.Fatal(err)
	}
	e.TrackConvergence(observed, []string{testNode, "sidecar~10.0.0.8~gone.shop~shop.svc.cluster.local"})
	resp = s.recv()
	if _, conv := rec.count(""); conv != 0 {
		t.Fatalf("%d convergences before the proxy ACKed", conv)
	}
	s.send(ackOf(resp))
	eventually(t, "the change converged", func() bool { _, conv := rec.count(""); return conv == 1 })
	if d := rec.converged[0]; d <= 0 || d > waitTimeout {
		t.Errorf("convergence %v, want within (0, %v]", d, waitTimeout)
	}

	// A change the proxy NACKs does not converge.
	if _, err := e.SetProxyResources(testNode, sidecarConfig(t, edsCluster("c1", 3*time.Second))); err != nil {
		t.Fatal(err)
	}
	e.TrackConvergence(time.Now(), []string{testNode})
	accepted := resp.GetVersionInfo()
	resp = s.recv()
	s.send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.ClusterType, ResponseNonce: resp.GetNonce(), VersionInfo: accepted,
		ErrorDetail: &rpcstatus.Status{Code: 3, Message: "unknown field"}})
	eventually(t, "the NACK counted", func() bool { n, _ := rec.count("nacked Cluster"); return n == 1 })
	// The rejected version is not sent again (TestNACKedConfigIsNotResent):
	// the fourth push is the next version.
	if _, err := e.SetProxyResources(testNode, sidecarConfig(t, edsCluster("c1", 4*time.Second))); err != nil {
		t.Fatal(err)
	}
	nacked := resp
	if resp = s.recv(); resp.GetVersionInfo() == nacked.GetVersionInfo() {
		t.Fatalf("the rejected version %s was sent again", nacked.GetVersionInfo())
	}
	eventually(t, "the push after the NACK", func() bool { n, _ := rec.count("pushed Cluster"); return n == 4 })
	s.close()
	eventually(t, "the disconnect", func() bool { n, _ := rec.count("disconnected Sidecar"); return n == 1 })
	if _, conv := rec.count(""); conv != 1 {
		t.Errorf("%d convergences, want 1: the NACKed change must not converge", conv)
	}

	logs := e.logs.String()
	for _, want := range []string{
		`"msg"="proxy connected" "proxy"="` + testNode + `" "namespace"="shop" "name"="web-0" "version"="1.2.3"`,
		`"msg"="proxy rejected config" "proxy"="` + testNode + `" "namespace"="shop" "name"="web-0" "version"="` + nacked.GetVersionInfo() + `" "typeURL"="` + resourcev3.ClusterType + `"`,
		`"msg"="proxy disconnected" "proxy"="` + testNode + `" "namespace"="shop" "name"="web-0" "version"="1.2.3"`,
	} {
		if strings.Count(logs, want) != 1 {
			t.Errorf("want one line with %s, log:\n%s", want, logs)
		}
	}
}

// TestProxyConnectLinesAreRateLimited: a client that reconnects in a loop
// gets logBurst connect and disconnect lines logged, while the Observer
// counts every connect.
func TestProxyConnectLinesAreRateLimited(t *testing.T) {
	rec := &recorder{}
	e := startOptsServer(t, Options{Observer: rec})
	const reconnects = 3 * logBurst
	for i := range reconnects {
		s := e.sotwStream(t)
		s.send(&discoveryv3.DiscoveryRequest{Node: versionedNode(), TypeUrl: resourcev3.ClusterType})
		eventually(t, fmt.Sprintf("connect %d", i), func() bool { n, _ := rec.count("connected Sidecar"); return n == i+1 })
		s.close()
		eventually(t, fmt.Sprintf("disconnect %d", i), func() bool { n, _ := rec.count("disconnected Sidecar"); return n == i+1 })
	}
	// Connects and disconnects share the node's budget.
	logs := e.logs.String()
	if n := strings.Count(logs, `"msg"="proxy connected"`) + strings.Count(logs, `"msg"="proxy disconnected"`); n != logBurst {
		t.Errorf("%d reconnects logged %d connect and disconnect lines, want %d (the burst)", reconnects, n, logBurst)
	}
}

func wantCount(t *testing.T, rec *recorder, event string, want int) {
	t.Helper()
	if n, _ := rec.count(event); n != want {
		t.Errorf("%q recorded %d times, want %d", event, n, want)
	}
}
