package runner

import (
	"fmt"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/go-logr/logr"
	"google.golang.org/protobuf/proto"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// scopedProxy is a sidecar of its own namespace "caller" (no services) that
// declares the first `calls` services of benchMesh as dependencies.
func scopedProxy(i, calls int) *ir.Proxy {
	p := benchProxy(i)
	p.Namespace = "caller"
	p.ID = ir.SidecarNodeID(p.IP, p.Name, p.Namespace)
	p.Scope = &ir.Scope{Namespaces: []string{"caller"}}
	for s := range calls {
		p.Scope.Hosts = append(p.Scope.Hosts, benchService(s, 0).FQDN)
	}
	return p
}

// Sidecars with the same namespace and scope share their outbound messages;
// one of the same namespace with another scope gets only its own
// dependencies, and still shares the load assignments.
func TestScopedSidecarsShareByScope(t *testing.T) {
	mesh := benchMesh(50, 2, 0)
	a, b, c := scopedProxy(0, 5), scopedProxy(1, 5), scopedProxy(2, 2)
	mesh.Proxies = []*ir.Proxy{a, b, c}
	pub, table := newCapturingPublisher(), newProxyTable()
	_ = table.update(mesh, pub, logr.Discard())
	checkEqualsForProxy(t, mesh, pub, table)
	ra, rb, rc := pub.res[a.ID], pub.res[b.ID], pub.res[c.ID]
	if got := outboundClusters(ra); got != 5 {
		t.Errorf("scoped sidecar with 5 dependencies got %d outbound clusters, want 5", got)
	}
	if got := outboundClusters(rc); got != 2 {
		t.Errorf("scoped sidecar with 2 dependencies got %d outbound clusters, want 2", got)
	}
	// Their own parts are alike too (same inbound port): all is shared.
	if n := sharedCount(ra[resource.ClusterType], rb[resource.ClusterType]); n != len(ra[resource.ClusterType]) {
		t.Errorf("sidecars with the same scope and inbound ports share %d clusters, want all %d", n, len(ra[resource.ClusterType]))
	}
	if n := sharedCount(ra[resource.EndpointType], rc[resource.EndpointType]); n != 2 {
		t.Errorf("sidecars with different scopes share %d load assignments, want the 2 of the common services", n)
	}
	if n := len(table.memo.groups); n != 2 {
		t.Errorf("memo holds %d outbound groups, want 2 (one per namespace and scope)", n)
	}
}

// outboundClusters counts the outbound|… clusters.
func outboundClusters(res map[string][]types.Resource) int {
	n := 0
	for _, r := range res[resource.ClusterType] {
		if name := r.(*clusterv3.Cluster).GetName(); len(name) > 9 && name[:9] == "outbound|" {
			n++
		}
	}
	return n
}

// configBytes is the marshalled size of every resource of a proxy's config.
func configBytes(res map[string][]types.Resource) int {
	n := 0
	for _, list := range res {
		for _, r := range list {
			n += proto.Size(r)
		}
	}
	return n
}

// scopedFloorMesh is the floor: 1000 services × 10 endpoints and one
// sidecar whose application calls 5 of them, scoped or not.
func scopedFloorMesh(scoped bool) (*ir.Mesh, *ir.Proxy) {
	mesh := benchMesh(1000, 10, 0)
	p := scopedProxy(0, 5)
	if !scoped {
		p.Scope = nil
	}
	mesh.Proxies = []*ir.Proxy{p}
	return mesh, p
}

// TestScopedConfigSize generates the floor's proxy scoped and mesh-wide and
// logs both sizes (docs/benchmarks.md); it asserts what the scoped proxy
// holds, not its size.
func TestScopedConfigSize(t *testing.T) {
	sizes := map[bool]int{}
	for _, scoped := range []bool{true, false} {
		mesh, p := scopedFloorMesh(scoped)
		pub := newCapturingPublisher()
		_ = newProxyTable().update(mesh, pub, logr.Discard())
		res := pub.res[p.ID]
		want := 1000
		if scoped {
			want = 5
		}
		if got := outboundClusters(res); got != want {
			t.Errorf("scoped=%v: %d outbound clusters, want %d", scoped, got, want)
		}
		sizes[scoped] = configBytes(res)
	}
	t.Logf("config of a sidecar calling 5 of 1000 services × 10 endpoints: scoped %d bytes, mesh-wide %d bytes", sizes[true], sizes[false])
}

// BenchmarkScopedProxyConfig generates the config of a sidecar calling 5 of
// 1000 services (scoped and mesh-wide) and reports its size in bytes.
func BenchmarkScopedProxyConfig(b *testing.B) {
	for _, scoped := range []bool{true, false} {
		b.Run(fmt.Sprintf("scoped=%v", scoped), func(b *testing.B) {
			mesh, p := scopedFloorMesh(scoped)
			var size int
			for b.Loop() {
				pub := newCapturingPublisher()
				_ = newProxyTable().update(mesh, pub, logr.Discard())
				size = configBytes(pub.res[p.ID])
			}
			b.ReportMetric(float64(size), "config-bytes")
		})
	}
}
