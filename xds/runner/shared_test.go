package runner

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/go-logr/logr"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/capstanmesh/capstan/xds/generate"
	"github.com/capstanmesh/capstan/xds/ir"
	"github.com/capstanmesh/capstan/xds/translate"
)

// capturingPublisher keeps the last resources published per proxy.
type capturingPublisher struct {
	mu  sync.Mutex
	res map[string]map[string][]types.Resource
}

func newCapturingPublisher() *capturingPublisher {
	return &capturingPublisher{res: map[string]map[string][]types.Resource{}}
}

func (p *capturingPublisher) SetProxyResources(id string, res map[string][]types.Resource) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.res[id] = res
	return true, nil
}

func (p *capturingPublisher) RemoveProxy(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.res, id)
}

// checkEqualsForProxy checks that every sidecar was published exactly what
// generate.ForProxy returns for it, with the same per-object errors.
func checkEqualsForProxy(t *testing.T, mesh *ir.Mesh, pub *capturingPublisher, table *proxyTable) {
	t.Helper()
	for _, p := range mesh.Proxies {
		if p.Kind != ir.ProxySidecar {
			continue
		}
		want, wantErrs, err := generateSplit(mesh, p)
		if err != nil {
			if _, ok := pub.res[p.ID]; ok && table.keys[p.ID] != "" {
				t.Errorf("%s: published although ForProxy fails: %v", p.ID, err)
			}
			continue
		}
		got := pub.res[p.ID]
		for typeURL, list := range want.ByType() {
			if !sameResources(list, got[typeURL]) {
				t.Fatalf("%s %s: shared config differs from ForProxy:\ngot  %v\nwant %v", p.ID, typeURL, names(got[typeURL]), names(list))
			}
		}
		if a, b := errorStrings(table.errs[p.ID]), errorStrings(wantErrs); !slices.Equal(a, b) {
			t.Errorf("%s: errors %q, ForProxy's %q", p.ID, a, b)
		}
	}
}

func sameResources(a, b []types.Resource) bool {
	return slices.EqualFunc(a, b, func(x, y types.Resource) bool { return proto.Equal(x, y) })
}

func names(list []types.Resource) []string {
	out := make([]string, len(list))
	for i, r := range list {
		out[i] = cachev3.GetResourceName(r)
	}
	return out
}

func errorStrings(errs generate.Errors) []string {
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		out = append(out, e.Error())
	}
	slices.Sort(out)
	return out
}

// moveFirstEndpoint returns a copy of the mesh with the first endpoint of the
// first service that has one at another address, or nil.
func moveFirstEndpoint(m *ir.Mesh) *ir.Mesh {
	for i, s := range m.Services {
		if s != nil && len(s.Endpoints) > 0 && s.Endpoints[0] != nil {
			return withEndpointMoved(m, i, 7)
		}
	}
	return nil
}

// The config assembled from shared outbound parts and per-proxy parts equals
// what ForProxy generates for each sidecar, for every translate golden input
// and many fuzz inputs, on the first push, on a push after an endpoint
// change (when unchanged messages are reused) and after a service is gone.
func TestSharedConfigEqualsForProxy(t *testing.T) {
	meshes := testMeshes(t)
	for i, mesh := range meshes {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			pub, table := newCapturingPublisher(), newProxyTable()
			_ = table.update(mesh, pub, logr.Discard())
			checkEqualsForProxy(t, mesh, pub, table)
			if moved := moveFirstEndpoint(mesh); moved != nil {
				_ = table.update(moved, pub, logr.Discard())
				checkEqualsForProxy(t, moved, pub, table)
			}
			// A mesh-wide setting changes both the proxies' own parts and
			// the shared outbound parts (both keys must cover it).
			idle := ir.Duration(time.Second)
			tuned := *mesh
			tuned.StreamIdleTimeout = &idle
			_ = table.update(&tuned, pub, logr.Discard())
			checkEqualsForProxy(t, &tuned, pub, table)
			if len(mesh.Services) > 1 {
				fewer := *mesh
				fewer.Services = mesh.Services[1:]
				_ = table.update(&fewer, pub, logr.Discard())
				checkEqualsForProxy(t, &fewer, pub, table)
			}
		})
	}
}

// Sidecars of one namespace get the same messages for their outbound config;
// load assignments are the same messages across namespaces too.
func TestSidecarsShareOutboundMessages(t *testing.T) {
	mesh := benchMesh(20, 3, 20) // two sidecars per namespace
	pub, table := newCapturingPublisher(), newProxyTable()
	_ = table.update(mesh, pub, logr.Discard())
	a, b, other := mesh.Proxies[0], mesh.Proxies[10], mesh.Proxies[1]
	if a.Namespace != b.Namespace || a.Namespace == other.Namespace {
		t.Fatal("fixture: want two sidecars of one namespace and one of another")
	}
	ra, rb, ro := pub.res[a.ID], pub.res[b.ID], pub.res[other.ID]
	for typeURL, want := range map[string]int{resource.ClusterType: 20, resource.EndpointType: 20, resource.RouteType: len(ra[resource.RouteType])} {
		if n := sharedCount(ra[typeURL], rb[typeURL]); n < want || want == 0 {
			t.Errorf("%s: sidecars of one namespace share %d messages, want at least %d", typeURL, n, want)
		}
	}
	if n := sharedCount(ra[resource.EndpointType], ro[resource.EndpointType]); n != 20 {
		t.Errorf("sidecars of two namespaces share %d load assignments, want all 20", n)
	}
	if n := table.memo.newCLAs; n != 20 {
		t.Errorf("%d load assignments generated as new, want one per service (20)", n)
	}
}

// sharedCount is the number of messages (pointers) a and b both hold.
func sharedCount(a, b []types.Resource) int {
	n := 0
	for _, x := range a {
		if slices.Contains(b, x) {
			n++
		}
	}
	return n
}

// testMeshes are the models of every translate golden input, of many fuzz
// inputs, and a small benchmark mesh.
func testMeshes(t *testing.T) []*ir.Mesh {
	t.Helper()
	var meshes []*ir.Mesh
	files, _ := filepath.Glob("../translate/testdata/*.in.yaml")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		in := &translate.Inputs{}
		if err := yaml.UnmarshalStrict(b, in); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		meshes = append(meshes, translated(t, in))
	}
	for seed := range uint32(60) {
		meshes = append(meshes, translated(t, buildFuzzInputs(fuzzSeedSequence(1024, seed+1))))
	}
	meshes = append(meshes, benchMesh(30, 3, 25))
	return meshes
}
