package server

import (
	"slices"
	"strconv"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestSotWADSServesSnapshotAndRecordsACKs(t *testing.T) {
	s := startServer(t)
	c1 := edsCluster("c1", time.Second)
	if !s.set(t, testNode, sidecarConfig(t, c1)) {
		t.Fatal("first SetProxyResources reported no change")
	}
	published := s.mustStatus(t, testNode).Published

	c := s.sotw(t)
	c.send(&discoveryv3.DiscoveryRequest{Node: xdsNode(testNode), TypeUrl: resourcev3.ClusterType})
	cds := c.recv()
	checkSotW(t, cds, resourcev3.ClusterType, published[resourcev3.ClusterType], "c1")
	c.send(ackOf(cds))
	st := s.waitStatus(t, testNode, "CDS ACK", ackedNonce(resourcev3.ClusterType, cds.GetNonce()))
	want := TypeStatus{
		SentVersion: cds.GetVersionInfo(), SentNonce: cds.GetNonce(),
		AckedVersion: cds.GetVersionInfo(), AckedNonce: cds.GetNonce(),
		AckedResources: map[string]string{"c1": mustVersion(t, c1)},
	}
	if diff := cmp.Diff(want, st.Types[resourcev3.ClusterType], cmpopts.IgnoreFields(TypeStatus{}, "AckedAt")); diff != "" {
		t.Errorf("CDS status (-want +got):\n%s", diff)
	}
	if st.Streams != 1 {
		t.Errorf("Streams = %d, want 1", st.Streams)
	}

	// RDS names its resources: the response and the ACKed set are that subset.
	c.send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.RouteType, ResourceNames: []string{testRoute}})
	rds := c.recv()
	checkSotW(t, rds, resourcev3.RouteType, published[resourcev3.RouteType], testRoute)
	c.send(ackOf(rds))
	st = s.waitStatus(t, testNode, "RDS ACK", ackedNonce(resourcev3.RouteType, rds.GetNonce()))
	if got := st.Types[resourcev3.RouteType].AckedResources; len(got) != 1 || got[testRoute] == "" {
		t.Errorf("RDS AckedResources = %v, want only %q", got, testRoute)
	}
	if !st.InSync() {
		t.Errorf("not in sync after ACKing CDS and RDS: %+v", st)
	}

	// Unchanged config sends nothing: the next response, after a real
	// change, carries the next nonce of the stream.
	if s.set(t, testNode, sidecarConfig(t, edsCluster("c1", time.Second))) {
		t.Error("unchanged config reported as changed")
	}
	c1b := edsCluster("c1", 2*time.Second)
	if !s.set(t, testNode, sidecarConfig(t, c1b)) {
		t.Fatal("changed cluster reported as unchanged")
	}
	published = s.mustStatus(t, testNode).Published
	next := c.recv()
	checkSotW(t, next, resourcev3.ClusterType, published[resourcev3.ClusterType], "c1")
	if next.GetVersionInfo() == cds.GetVersionInfo() {
		t.Errorf("CDS version did not change: %s", next.GetVersionInfo())
	}
	if want := nextNonce(t, rds.GetNonce()); next.GetNonce() != want {
		t.Errorf("nonce = %s, want %s: a response was sent in between", next.GetNonce(), want)
	}
	if st := s.mustStatus(t, testNode); st.InSync() {
		t.Error("in sync before ACKing the new CDS version")
	}
}

// checkSotW checks a response's type, version and resource names.
func checkSotW(t *testing.T, resp *discoveryv3.DiscoveryResponse, typeURL, version string, names ...string) {
	t.Helper()
	if resp.GetTypeUrl() != typeURL {
		t.Fatalf("response type %s, want %s", resp.GetTypeUrl(), typeURL)
	}
	if resp.GetVersionInfo() != version || version == "" {
		t.Errorf("response version %q, want published %q", resp.GetVersionInfo(), version)
	}
	if diff := cmp.Diff(names, sotwNames(t, resp), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("resource names (-want +got):\n%s", diff)
	}
}

// sotwNames decodes a response's resources and returns their sorted names.
func sotwNames(t *testing.T, resp *discoveryv3.DiscoveryResponse) []string {
	t.Helper()
	var names []string
	for _, a := range resp.GetResources() {
		m, err := a.UnmarshalNew()
		if err != nil {
			t.Fatalf("unmarshal %s: %v", a.GetTypeUrl(), err)
		}
		names = append(names, cachev3.GetResourceName(m))
	}
	slices.Sort(names)
	return names
}

func nextNonce(t *testing.T, nonce string) string {
	t.Helper()
	n, err := strconv.Atoi(nonce)
	if err != nil {
		t.Fatalf("nonce %q: %v", nonce, err)
	}
	return strconv.Itoa(n + 1)
}

func ackedNonce(typeURL, nonce string) func(ProxyStatus, bool) bool {
	return func(st ProxyStatus, _ bool) bool { return st.Types[typeURL].AckedNonce == nonce }
}
