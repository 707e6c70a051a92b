package server

import (
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
)

const nackMessage = `cluster c1: invalid connect_timeout`

func TestNACKIsRecordedWithItsMessage(t *testing.T) {
	detail := &rpcstatus.Status{Code: int32(codes.InvalidArgument), Message: nackMessage}
	tests := map[string]func(t *testing.T, s *testServer) (version, nonce string){
		"sotw": func(t *testing.T, s *testServer) (string, string) {
			c := s.sotw(t)
			c.send(&discoveryv3.DiscoveryRequest{Node: xdsNode(testNode), TypeUrl: resourcev3.ClusterType})
			resp := c.recv()
			c.send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.ClusterType, ResponseNonce: resp.GetNonce(), ErrorDetail: detail})
			return resp.GetVersionInfo(), resp.GetNonce()
		},
		"delta": func(t *testing.T, s *testServer) (string, string) {
			d := s.delta(t)
			d.send(&discoveryv3.DeltaDiscoveryRequest{Node: xdsNode(testNode), TypeUrl: resourcev3.ClusterType})
			resp := d.recv()
			d.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.ClusterType, ResponseNonce: resp.GetNonce(), ErrorDetail: detail})
			return resp.GetSystemVersionInfo(), resp.GetNonce()
		},
	}
	for name, nack := range tests {
		t.Run(name, func(t *testing.T) {
			s := startServer(t)
			s.set(t, testNode, sidecarConfig(t, edsCluster("c1", time.Second)))
			version, nonce := nack(t, s)

			st := s.waitStatus(t, testNode, "NACK", func(st ProxyStatus, _ bool) bool {
				return st.Types[resourcev3.ClusterType].LastNack != nil
			})
			cds := st.Types[resourcev3.ClusterType]
			want := &Nack{Version: version, Nonce: nonce, Code: int32(codes.InvalidArgument), Message: nackMessage}
			if diff := cmp.Diff(want, cds.LastNack, cmpopts.IgnoreFields(Nack{}, "At")); diff != "" {
				t.Errorf("LastNack (-want +got):\n%s", diff)
			}
			if !cds.Nacked || cds.AckedVersion != "" || st.InSync() {
				t.Errorf("Nacked = %v, AckedVersion = %q, InSync = %v; want true, empty, false", cds.Nacked, cds.AckedVersion, st.InSync())
			}
			waitChange(t, s, testNode)
		})
	}
}

// waitChange waits until OnStatusChange has reported node.
func waitChange(t *testing.T, s *testServer, node string) {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case got := <-s.changes:
			if got == node {
				return
			}
		case <-timeout:
			t.Fatalf("OnStatusChange never reported %s", node)
		}
	}
}

func TestNodeWithoutSnapshotWaitsForConfig(t *testing.T) {
	tests := map[string]func(t *testing.T, s *testServer) (watches func() int, receive func() []string){
		"sotw": func(t *testing.T, s *testServer) (func() int, func() []string) {
			c := s.sotw(t)
			c.send(&discoveryv3.DiscoveryRequest{Node: xdsNode(testNode), TypeUrl: resourcev3.ClusterType})
			return s.watches(testNode, false), func() []string { return sotwNames(t, c.recv()) }
		},
		"delta": func(t *testing.T, s *testServer) (func() int, func() []string) {
			d := s.delta(t)
			d.send(&discoveryv3.DeltaDiscoveryRequest{Node: xdsNode(testNode), TypeUrl: resourcev3.ClusterType})
			return s.watches(testNode, true), func() []string { return deltaNames(d.recv()) }
		},
	}
	for name, open := range tests {
		t.Run(name, func(t *testing.T) {
			s := startServer(t)
			watches, receive := open(t, s)
			// The request is held as an open watch in the cache, the
			// stream stays up, and nothing is sent.
			eventually(t, "an open watch", func() bool { return watches() == 1 })
			if st := s.mustStatus(t, testNode); st.Streams != 1 || len(st.Published) != 0 {
				t.Errorf("status = %+v, want 1 stream and nothing published", st)
			}

			s.set(t, testNode, sidecarConfig(t, edsCluster("c1", time.Second)))
			if diff := cmp.Diff([]string{"c1"}, receive()); diff != "" {
				t.Errorf("resources (-want +got):\n%s", diff)
			}
		})
	}
}

// watches counts the cache's open watches of a node.
func (s *testServer) watches(node string, delta bool) func() int {
	return func() int { return s.sidecars.watchCount(node, delta) }
}

func TestDisconnectUpdatesStreamCount(t *testing.T) {
	s := startServer(t)
	const unpublished = "sidecar~10.0.0.8~web-1.shop~shop.svc.cluster.local"
	s.set(t, testNode, sidecarConfig(t, edsCluster("c1", time.Second)))

	a, b := s.delta(t), s.sotw(t)
	a.send(&discoveryv3.DeltaDiscoveryRequest{Node: xdsNode(testNode), TypeUrl: resourcev3.ClusterType})
	b.send(&discoveryv3.DiscoveryRequest{Node: xdsNode(testNode), TypeUrl: resourcev3.ClusterType})
	other := s.delta(t)
	other.send(&discoveryv3.DeltaDiscoveryRequest{Node: xdsNode(unpublished), TypeUrl: resourcev3.ClusterType})
	s.waitStatus(t, testNode, "2 streams", streams(2))
	s.waitStatus(t, unpublished, "1 stream", streams(1))

	a.close()
	s.waitStatus(t, testNode, "1 stream", streams(1))
	b.close()
	st := s.waitStatus(t, testNode, "no stream", streams(0))
	if len(st.Published) == 0 {
		t.Error("published node lost its status on disconnect")
	}

	// A node with neither streams nor config is forgotten.
	other.close()
	s.waitStatus(t, unpublished, "forgotten node", func(_ ProxyStatus, ok bool) bool { return !ok })
}

func streams(n int) func(ProxyStatus, bool) bool {
	return func(st ProxyStatus, ok bool) bool { return ok && st.Streams == n }
}

func TestProxyStatusesAreSortedCopies(t *testing.T) {
	s := New(Options{})
	nodes := []string{
		"sidecar~10.0.0.9~web-2.shop~shop.svc.cluster.local",
		"grpc~10.0.0.3~client-0.shop~shop.svc.cluster.local",
	}
	for _, n := range nodes {
		if _, err := s.SetProxyResources(n, sidecarConfig(t, edsCluster("c1", time.Second))); err != nil {
			t.Fatalf("SetProxyResources: %v", err)
		}
	}
	got := s.ProxyStatuses()
	if len(got) != 2 || got[0].NodeID != nodes[1] || got[1].NodeID != nodes[0] {
		t.Fatalf("ProxyStatuses not sorted by node ID: %+v", got)
	}
	got[0].Published[resourcev3.ClusterType] = "mutated"
	again, _ := s.ProxyStatus(nodes[1])
	if again.Published[resourcev3.ClusterType] == "mutated" {
		t.Error("ProxyStatuses returned a map shared with the server")
	}
}

func TestServeStopsWithOpenStreams(t *testing.T) {
	s := startServer(t)
	d := s.delta(t)
	d.send(&discoveryv3.DeltaDiscoveryRequest{Node: xdsNode(testNode), TypeUrl: resourcev3.ClusterType})
	s.waitStatus(t, testNode, "1 stream", streams(1))
	if err := s.stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if err := d.recvErr(); err == nil {
		t.Error("stream ended without error")
	}
}

// TestNACKedConfigIsNotResent: after a NACK the server does not send the
// rejected config again (a client would reject it again, in a loop); the
// stream's next response is the next version.
func TestNACKedConfigIsNotResent(t *testing.T) {
	detail := &rpcstatus.Status{Code: int32(codes.InvalidArgument), Message: nackMessage}
	tests := map[string]func(t *testing.T, s *testServer) (next func() (version, nonce string), nonce string){
		"sotw": func(t *testing.T, s *testServer) (func() (string, string), string) {
			c := s.sotw(t)
			c.send(&discoveryv3.DiscoveryRequest{Node: xdsNode(testNode), TypeUrl: resourcev3.ClusterType})
			resp := c.recv()
			c.send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.ClusterType, ResponseNonce: resp.GetNonce(), ErrorDetail: detail})
			return func() (string, string) { r := c.recv(); return r.GetVersionInfo(), r.GetNonce() }, resp.GetNonce()
		},
		"delta": func(t *testing.T, s *testServer) (func() (string, string), string) {
			d := s.delta(t)
			d.send(&discoveryv3.DeltaDiscoveryRequest{Node: xdsNode(testNode), TypeUrl: resourcev3.ClusterType})
			resp := d.recv()
			d.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.ClusterType, ResponseNonce: resp.GetNonce(), ErrorDetail: detail})
			return func() (string, string) { r := d.recv(); return r.GetSystemVersionInfo(), r.GetNonce() }, resp.GetNonce()
		},
	}
	for name, nack := range tests {
		t.Run(name, func(t *testing.T) {
			s := startServer(t)
			s.set(t, testNode, sidecarConfig(t, edsCluster("c1", time.Second)))
			next, nonce := nack(t, s)
			s.waitStatus(t, testNode, "NACK", func(st ProxyStatus, _ bool) bool {
				return st.Types[resourcev3.ClusterType].LastNack != nil
			})
			s.set(t, testNode, sidecarConfig(t, edsCluster("c1", 2*time.Second)))
			want := s.mustStatus(t, testNode).Published[resourcev3.ClusterType]
			version, got := next()
			if version != want || got != nextNonce(t, nonce) {
				t.Errorf("after the NACK of nonce %s got version %s nonce %s, want the new version %s with nonce %s",
					nonce, version, got, want, nextNonce(t, nonce))
			}
		})
	}
}
