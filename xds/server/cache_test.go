package server

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"
	"github.com/google/go-cmp/cmp"
)

// sharedMesh is config that several proxies share, as the runner hands it
// to the server: the same messages in every proxy's resources.
type sharedMesh struct {
	listener  types.Resource
	route     types.Resource
	clusters  []*clusterv3.Cluster
	endpoints []*endpointv3.ClusterLoadAssignment
}

func newSharedMesh(t testing.TB, n int) *sharedMesh {
	m := &sharedMesh{listener: httpListener(t, testListener, testRoute), route: routeConfig(testRoute, "c0")}
	for i := range n {
		name := "c" + strconv.Itoa(i)
		m.clusters = append(m.clusters, edsCluster(name, time.Second))
		m.endpoints = append(m.endpoints, endpoints(name, "10.1.0.1"))
	}
	return m
}

// resources is one proxy's config: a fresh map, the shared messages.
func (m *sharedMesh) resources() map[string][]types.Resource {
	res := map[string][]types.Resource{
		resourcev3.ListenerType: {m.listener},
		resourcev3.RouteType:    {m.route},
	}
	for i := range m.clusters {
		res[resourcev3.ClusterType] = append(res[resourcev3.ClusterType], m.clusters[i])
		res[resourcev3.EndpointType] = append(res[resourcev3.EndpointType], m.endpoints[i])
	}
	return res
}

func sharingNode(i int) string {
	return fmt.Sprintf("sidecar~10.0.1.%d~web-%d.shop~shop.svc.cluster.local", i+1, i)
}

// subscribe opens a delta stream for node, takes CDS (wildcard), ACKs it,
// subscribes to the endpoints of eds (all clusters received when nil) and
// ACKs them. It returns the stream, the versions received per type, and the
// nonce of the last response.
func (s *testServer) subscribe(t *testing.T, node string, eds []string) (*deltaClient, map[string]map[string]string, string) {
	t.Helper()
	d := s.delta(t)
	d.send(&discoveryv3.DeltaDiscoveryRequest{Node: xdsNode(node), TypeUrl: resourcev3.ClusterType})
	cds := d.recv()
	d.send(deltaAckOf(cds))
	if eds == nil {
		eds = deltaNames(cds)
	}
	d.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResourceNamesSubscribe: eds})
	e := d.recv()
	d.send(deltaAckOf(e))
	got := map[string]map[string]string{
		resourcev3.ClusterType:  versionsOf(cds),
		resourcev3.EndpointType: versionsOf(e),
		"system":                {"cds": cds.GetSystemVersionInfo(), "eds": e.GetSystemVersionInfo()},
	}
	return d, got, e.GetNonce()
}

func versionsOf(resp *discoveryv3.DeltaDiscoveryResponse) map[string]string {
	out := map[string]string{}
	for _, r := range resp.GetResources() {
		out[r.GetName()] = r.GetVersion()
	}
	return out
}

func TestDeltaProxiesSharingConfigGetTheSameVersions(t *testing.T) {
	s := startServer(t)
	mesh := newSharedMesh(t, 5)
	const proxies = 4
	for i := range proxies {
		s.set(t, sharingNode(i), mesh.resources())
	}
	want := map[string]string{}
	for _, c := range mesh.clusters {
		want[c.GetName()] = mustVersion(t, c)
	}

	var first map[string]map[string]string
	for i := range proxies {
		_, got, _ := s.subscribe(t, sharingNode(i), nil)
		if diff := cmp.Diff(want, got[resourcev3.ClusterType]); diff != "" {
			t.Errorf("%s: cluster versions (-want +got):\n%s", sharingNode(i), diff)
		}
		if i == 0 {
			first = got
			continue
		}
		if diff := cmp.Diff(first, got); diff != "" {
			t.Errorf("%s: versions differ from %s's (-first +got):\n%s", sharingNode(i), sharingNode(0), diff)
		}
	}
	// What the tracker keeps of the ACKed load assignments is one map for all.
	acked := map[unsafe.Pointer]bool{}
	for i := range proxies {
		s.waitStatus(t, sharingNode(i), "endpoints ACKed", func(st ProxyStatus, ok bool) bool {
			return ok && len(st.Types[resourcev3.EndpointType].AckedResources) == len(mesh.endpoints)
		})
		s.tracker.mu.Lock()
		acked[reflect.ValueOf(s.tracker.proxies[sharingNode(i)].Types[resourcev3.EndpointType].AckedResources).UnsafePointer()] = true
		s.tracker.mu.Unlock()
	}
	if len(acked) != 1 {
		t.Errorf("the ACKed endpoints of %d proxies sharing config are %d maps, want 1", proxies, len(acked))
	}
	if hashed := s.ResourcesHashed(); hashed != uint64(2+2*len(mesh.clusters)) {
		t.Errorf("resources hashed = %d, want %d: each shared resource once", hashed, 2+2*len(mesh.clusters))
	}
}

func TestDeltaEndpointChangeReachesOnlySubscribedStreams(t *testing.T) {
	s := startServer(t)
	mesh := newSharedMesh(t, 3)
	const proxies = 4 // 0 and 1 subscribe to c1's endpoints, 2 does not, 3 has no c1
	publish := func(i int) {
		res := mesh.resources()
		if i == 3 {
			isC1 := func(r types.Resource) bool { return cachev3.GetResourceName(r) == "c1" }
			res[resourcev3.ClusterType] = slices.DeleteFunc(res[resourcev3.ClusterType], isC1)
			res[resourcev3.EndpointType] = slices.DeleteFunc(res[resourcev3.EndpointType], isC1)
		}
		s.set(t, sharingNode(i), res)
	}
	streams := make([]*deltaClient, proxies)
	nonces := make([]string, proxies)
	for i := range proxies {
		publish(i)
		eds := []string{"c0", "c1", "c2"}
		switch i {
		case 2:
			eds = []string{"c0", "c2"}
		case 3:
			eds = nil
		}
		streams[i], _, nonces[i] = s.subscribe(t, sharingNode(i), eds)
	}

	moved := endpoints("c1", "10.1.0.2")
	mesh.endpoints[1] = moved
	for i := range proxies {
		publish(i)
	}
	for i := range 2 {
		resp := streams[i].recv()
		checkDelta(t, resp, map[string]string{"c1": mustVersion(t, moved)})
		if resp.GetTypeUrl() != resourcev3.EndpointType || resp.GetNonce() != nextNonce(t, nonces[i]) {
			t.Errorf("%s: got %s nonce %s, want endpoints with nonce %s", sharingNode(i), resp.GetTypeUrl(), resp.GetNonce(), nextNonce(t, nonces[i]))
		}
		streams[i].send(deltaAckOf(resp))
		nonces[i] = resp.GetNonce()
	}

	// A new cluster for everyone: each stream's next response is that
	// cluster, so no stream got anything else in between.
	added := edsCluster("c3", time.Second)
	mesh.clusters = append(mesh.clusters, added)
	mesh.endpoints = append(mesh.endpoints, endpoints("c3", "10.1.0.3"))
	for i := range proxies {
		publish(i)
	}
	for i := range proxies {
		resp := streams[i].recv()
		if resp.GetTypeUrl() != resourcev3.ClusterType || resp.GetNonce() != nextNonce(t, nonces[i]) {
			t.Errorf("%s: got %s nonce %s, want the new cluster with nonce %s", sharingNode(i), resp.GetTypeUrl(), resp.GetNonce(), nextNonce(t, nonces[i]))
		}
		checkDelta(t, resp, map[string]string{"c3": mustVersion(t, added)})
	}
}

// TestDeltaStreamsShareMarshalledResources checks what a stream holds: the
// responses to two proxies sharing config point to the same marshalled
// resources, and the versions a stream keeps share their strings.
func TestDeltaStreamsShareMarshalledResources(t *testing.T) {
	s := New(Options{})
	mesh := newSharedMesh(t, 3)
	var resps []cachev3.DeltaResponse
	for i := range 2 {
		node := sharingNode(i)
		if _, err := s.SetProxyResources(node, mesh.resources()); err != nil {
			t.Fatal(err)
		}
		out := make(chan cachev3.DeltaResponse, 1)
		req := &discoveryv3.DeltaDiscoveryRequest{Node: xdsNode(node), TypeUrl: resourcev3.ClusterType}
		sub := streamv3.NewDeltaSubscription(nil, nil, nil, true)
		if _, err := s.sidecars.CreateDeltaWatch(req, &sub, out); err != nil {
			t.Fatal(err)
		}
		resps = append(resps, <-out)
	}
	wire := make([]map[string]*discoveryv3.Resource, 2)
	for i, r := range resps {
		dr, err := r.GetDeltaDiscoveryResponse()
		if err != nil {
			t.Fatal(err)
		}
		wire[i] = map[string]*discoveryv3.Resource{}
		for _, res := range dr.GetResources() {
			wire[i][res.GetName()] = res
		}
	}
	if got := slices.Sorted(maps.Keys(wire[0])); !slices.Equal(got, []string{"c0", "c1", "c2"}) {
		t.Fatalf("resources %v, want c0 c1 c2", got)
	}
	next0, next1 := resps[0].GetReturnedResources(), resps[1].GetReturnedResources()
	for name, r := range wire[0] {
		if wire[1][name] != r {
			t.Errorf("%s: the two responses carry different *Resource values; want the one marshalled once", name)
		}
		if unsafe.StringData(next0[name]) != unsafe.StringData(next1[name]) || next0[name] != r.GetVersion() {
			t.Errorf("%s: the streams' versions %q and %q are not one shared string", name, next0[name], next1[name])
		}
	}
}

// TestReusedListsStillCheckReferences: a push that hands the same cluster
// and listener messages again skips looking them up, but a change of the
// names of load assignments or route configurations is still checked
// against them.
func TestReusedListsStillCheckReferences(t *testing.T) {
	s := New(Options{})
	mesh := newSharedMesh(t, 2)
	node := sharingNode(0)
	if _, err := s.SetProxyResources(node, mesh.resources()); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		mutate  func(map[string][]types.Resource)
		wantErr string
	}{
		"endpoints without a cluster": {
			mutate: func(r map[string][]types.Resource) {
				r[resourcev3.EndpointType] = append(r[resourcev3.EndpointType], endpoints("orphan", "10.2.0.1"))
			},
			wantErr: resourcev3.EndpointType,
		},
		"a cluster without endpoints": {
			mutate:  func(r map[string][]types.Resource) { r[resourcev3.EndpointType] = r[resourcev3.EndpointType][:1] },
			wantErr: resourcev3.EndpointType,
		},
		"another route name": {
			mutate: func(r map[string][]types.Resource) {
				r[resourcev3.RouteType] = []types.Resource{routeConfig("other", "c0")}
			},
			wantErr: resourcev3.RouteType,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			res := mesh.resources()
			tc.mutate(res)
			if _, err := s.SetProxyResources(node, res); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("SetProxyResources = %v, want an error naming %s", err, tc.wantErr)
			}
		})
	}
	res := mesh.resources()
	res[resourcev3.EndpointType] = []types.Resource{endpoints("c0", "10.3.0.1"), mesh.endpoints[1]}
	if changed, err := s.SetProxyResources(node, res); err != nil || !changed {
		t.Errorf("moved endpoint: SetProxyResources = %v, %v; want true, nil", changed, err)
	}
}

// TestDeltaSubscribedNameAppearsAndGoes: a stream subscribed to a load
// assignment that does not exist yet gets it when it is published, and its
// removal when it goes; the other subscribed names are not resent.
func TestDeltaSubscribedNameAppearsAndGoes(t *testing.T) {
	s := startServer(t)
	mesh := newSharedMesh(t, 1)
	node := sharingNode(0)
	s.set(t, node, mesh.resources())
	d, _, _ := s.subscribe(t, node, []string{"c0", "c1"})
	eventually(t, "open watches for clusters and endpoints", func() bool { return s.sidecars.watchCount(node, true) == 2 })

	added := edsCluster("c1", time.Second)
	mesh.clusters = append(mesh.clusters, added)
	mesh.endpoints = append(mesh.endpoints, endpoints("c1", "10.1.0.9"))
	s.set(t, node, mesh.resources())
	got := recvTypes(t, d, 2)
	checkDelta(t, got[resourcev3.ClusterType], map[string]string{"c1": mustVersion(t, added)})
	checkDelta(t, got[resourcev3.EndpointType], map[string]string{"c1": mustVersion(t, mesh.endpoints[1])})
	eventually(t, "open watches again", func() bool { return s.sidecars.watchCount(node, true) == 2 })

	mesh.clusters, mesh.endpoints = mesh.clusters[:1], mesh.endpoints[:1]
	s.set(t, node, mesh.resources())
	got = recvTypes(t, d, 2)
	checkDelta(t, got[resourcev3.ClusterType], nil, "c1")
	checkDelta(t, got[resourcev3.EndpointType], nil, "c1")
}

// recvTypes receives and ACKs n responses, one per type.
func recvTypes(t *testing.T, d *deltaClient, n int) map[string]*discoveryv3.DeltaDiscoveryResponse {
	t.Helper()
	got := map[string]*discoveryv3.DeltaDiscoveryResponse{}
	for range n {
		resp := d.recv()
		if got[resp.GetTypeUrl()] != nil {
			t.Fatalf("two %s responses", resp.GetTypeUrl())
		}
		got[resp.GetTypeUrl()] = resp
		d.send(deltaAckOf(resp))
	}
	return got
}

// TestDeltaUpdatedClusterResendsItsEndpoints: Envoy warms an updated EDS
// cluster until its endpoint assignment arrives again, so a cluster update
// is followed on the stream by the cluster's unchanged assignment; a new
// cluster's assignment goes only to streams that subscribe to it, and other
// assignments are not resent.
func TestDeltaUpdatedClusterResendsItsEndpoints(t *testing.T) {
	s := startServer(t)
	mesh := newSharedMesh(t, 3)
	node := sharingNode(0)
	s.set(t, node, mesh.resources())
	d, _, nonce := s.subscribe(t, node, nil)

	updated := edsCluster("c1", 2*time.Second)
	mesh.clusters[1] = updated
	s.set(t, node, mesh.resources())
	cds := d.recv()
	if cds.GetTypeUrl() != resourcev3.ClusterType || cds.GetNonce() != nextNonce(t, nonce) {
		t.Fatalf("got %s nonce %s, want the updated cluster with nonce %s", cds.GetTypeUrl(), cds.GetNonce(), nextNonce(t, nonce))
	}
	checkDelta(t, cds, map[string]string{"c1": mustVersion(t, updated)})
	eds := d.recv()
	if eds.GetTypeUrl() != resourcev3.EndpointType {
		t.Fatalf("after the cluster update got %s, want its endpoints", eds.GetTypeUrl())
	}
	checkDelta(t, eds, map[string]string{"c1": mustVersion(t, mesh.endpoints[1])})
	// The next update comes while the stream has not ACKed the endpoints,
	// so no endpoint watch is open: the resend answers the ACK.
	d.send(deltaAckOf(cds))
	s.waitStatus(t, node, "clusters ACKed", func(st ProxyStatus, ok bool) bool {
		return ok && st.Types[resourcev3.ClusterType].AckedVersion == cds.GetSystemVersionInfo()
	})
	again := edsCluster("c1", 3*time.Second)
	mesh.clusters[1] = again
	s.set(t, node, mesh.resources())
	checkDelta(t, d.recv(), map[string]string{"c1": mustVersion(t, again)})
	d.send(deltaAckOf(eds))
	resent := d.recv()
	if resent.GetTypeUrl() != resourcev3.EndpointType {
		t.Fatalf("after the endpoints' ACK got %s, want the endpoints again", resent.GetTypeUrl())
	}
	checkDelta(t, resent, map[string]string{"c1": mustVersion(t, mesh.endpoints[1])})
}
