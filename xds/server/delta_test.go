package server

import (
	"slices"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestDeltaADSSendsOnlyChangedAndRemovedResources(t *testing.T) {
	s := startServer(t)
	c1, c2 := edsCluster("c1", time.Second), edsCluster("c2", time.Second)
	s.set(t, testNode, sidecarConfig(t, c1, c2))

	d := s.delta(t)
	d.send(&discoveryv3.DeltaDiscoveryRequest{Node: xdsNode(testNode), TypeUrl: resourcev3.ClusterType})
	first := d.recv()
	checkDelta(t, first, map[string]string{"c1": mustVersion(t, c1), "c2": mustVersion(t, c2)})
	d.send(deltaAckOf(first))

	c2b := edsCluster("c2", 2*time.Second)
	if !s.set(t, testNode, sidecarConfig(t, c1, c2b)) {
		t.Fatal("changed cluster reported as unchanged")
	}
	changed := d.recv()
	checkDelta(t, changed, map[string]string{"c2": mustVersion(t, c2b)})
	d.send(deltaAckOf(changed))

	if s.set(t, testNode, sidecarConfig(t, edsCluster("c1", time.Second), edsCluster("c2", 2*time.Second))) {
		t.Error("unchanged config reported as changed")
	}

	if !s.set(t, testNode, sidecarConfig(t, c1)) {
		t.Fatal("removed cluster reported as unchanged")
	}
	removed := d.recv()
	checkDelta(t, removed, nil, "c2")
	if want := nextNonce(t, changed.GetNonce()); removed.GetNonce() != want {
		t.Errorf("nonce = %s, want %s: a response was sent for unchanged config", removed.GetNonce(), want)
	}
	d.send(deltaAckOf(removed))

	st := s.waitStatus(t, testNode, "ACK of the removal", ackedNonce(resourcev3.ClusterType, removed.GetNonce()))
	cds := st.Types[resourcev3.ClusterType]
	if want := st.Published[resourcev3.ClusterType]; cds.AckedVersion != want || removed.GetSystemVersionInfo() != want {
		t.Errorf("AckedVersion %q, system_version_info %q, want published %q", cds.AckedVersion, removed.GetSystemVersionInfo(), want)
	}
	if diff := cmp.Diff(map[string]string{"c1": mustVersion(t, c1)}, cds.AckedResources); diff != "" {
		t.Errorf("AckedResources (-want +got):\n%s", diff)
	}
	if !st.InSync() || s.InSyncProxies() != 1 {
		t.Errorf("InSync = %v, InSyncProxies = %d after ACKing the published version; want true, 1", st.InSync(), s.InSyncProxies())
	}
}

// checkDelta checks a delta response's resources (name → version, and that
// each decodes to a resource of that name) and removed resources.
func checkDelta(t *testing.T, resp *discoveryv3.DeltaDiscoveryResponse, want map[string]string, removed ...string) {
	t.Helper()
	got := map[string]string{}
	for _, r := range resp.GetResources() {
		m, err := r.GetResource().UnmarshalNew()
		if err != nil {
			t.Fatalf("unmarshal %s: %v", r.GetName(), err)
		}
		if name := cachev3.GetResourceName(m); name != r.GetName() {
			t.Errorf("resource named %q carries %q", r.GetName(), name)
		}
		got[r.GetName()] = r.GetVersion()
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("resources (-want +got):\n%s", diff)
	}
	gotRemoved := slices.Sorted(slices.Values(resp.GetRemovedResources()))
	if diff := cmp.Diff(removed, gotRemoved, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("removed resources (-want +got):\n%s", diff)
	}
}

// deltaNames returns the sorted names of a delta response's resources.
func deltaNames(resp *discoveryv3.DeltaDiscoveryResponse) []string {
	var names []string
	for _, r := range resp.GetResources() {
		names = append(names, r.GetName())
	}
	slices.Sort(names)
	return names
}
