package runner

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/go-logr/logr"

	"github.com/capstanmesh/capstan/test/xdsclient"
	"github.com/capstanmesh/capstan/xds/ir"
	"github.com/capstanmesh/capstan/xds/server"
)

const deltaTimeout = 30 * time.Second

func serveForTest(t *testing.T, srv *server.Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx, lis); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return lis.Addr().String()
}

func clusterOf(s *ir.Service) string { return ir.ClusterName(s.FQDN, 80, "") }

// waitEndpoints waits until the client holds its clusters, listeners and
// exactly the named load assignments.
func waitEndpoints(t *testing.T, c *xdsclient.Delta, names ...string) {
	t.Helper()
	c.WaitFor(t, deltaTimeout, func(st xdsclient.State) error {
		if len(st[resource.ClusterType]) == 0 || len(st[resource.ListenerType]) == 0 {
			return errors.New("no clusters or listeners yet")
		}
		if len(st[resource.EndpointType]) != len(names) {
			return fmt.Errorf("%d load assignments, want %d", len(st[resource.EndpointType]), len(names))
		}
		return nil
	})
}

// endpointResponsesSince returns the names of every EDS response after the first n responses.
func endpointResponsesSince(c *xdsclient.Delta, n int) [][]string {
	var out [][]string
	for _, r := range c.Responses()[n:] {
		if r.TypeURL == resource.EndpointType {
			out = append(out, slices.Sorted(slices.Values(r.Names)))
		} else {
			out = append(out, []string{"unexpected " + r.TypeURL})
		}
	}
	return out
}

// One endpoint change is generated and hashed as one load assignment, and
// real delta ADS clients receive exactly that assignment if they subscribed
// to it, and nothing otherwise.
func TestEndpointChangeSendsOneAssignmentToSubscribersOnly(t *testing.T) {
	mesh := benchMesh(20, 3, 4)
	srv := server.New(server.Options{})
	addr := serveForTest(t, srv)
	table := newProxyTable()
	if errs := table.update(mesh, srv, logr.Discard()); len(errs) > 0 {
		t.Fatal(errs)
	}
	changed, sentinel := mesh.Services[5], mesh.Services[0]
	clients := make([]*xdsclient.Delta, len(mesh.Proxies))
	for i, p := range mesh.Proxies {
		c := xdsclient.DialDelta(t, addr, p.ID)
		c.Subscribe(t, resource.ClusterType)
		c.Subscribe(t, resource.ListenerType)
		eds := []string{clusterOf(sentinel), clusterOf(mesh.Services[1+i])}
		if i < 2 { // proxies 0 and 1 also use the service that changes
			eds = append(eds, clusterOf(changed))
		}
		c.Subscribe(t, resource.EndpointType, eds...)
		waitEndpoints(t, c, eds...)
		clients[i] = c
	}
	seen := make([]int, len(clients))
	for i, c := range clients {
		seen[i] = len(c.Responses())
	}

	hashed := srv.ResourcesHashed()
	mesh = withEndpointMoved(mesh, 5, 1)
	_ = table.update(mesh, srv, logr.Discard())
	if p := table.lastParts; p.whole != 0 || p.patched == 0 {
		t.Errorf("outbound parts after one endpoint change: %+v, want all patched", p)
	}
	if table.memo.newCLAs != 1 {
		t.Errorf("%d load assignments generated as new for one endpoint change, want 1", table.memo.newCLAs)
	}
	if n := srv.ResourcesHashed() - hashed; n != 1 {
		t.Errorf("the server hashed %d resources for one endpoint change, want 1", n)
	}
	// A change every client subscribed to: once each client has it, anything
	// the first change sent it was received before (one stream, in order).
	mesh = withEndpointMoved(mesh, 0, 2)
	_ = table.update(mesh, srv, logr.Discard())
	for i, c := range clients {
		want := [][]string{{clusterOf(sentinel)}}
		if i < 2 {
			want = [][]string{{clusterOf(changed)}, {clusterOf(sentinel)}}
		}
		waitResponses(t, c, seen[i], len(want))
		if got := endpointResponsesSince(c, seen[i]); !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("proxy %d received %q, want %q", i, got, want)
		}
	}
}

func waitResponses(t *testing.T, c *xdsclient.Delta, seen, n int) {
	t.Helper()
	deadline := time.Now().Add(deltaTimeout)
	for len(c.Responses())-seen < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d responses after the change, want %d", len(c.Responses())-seen, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// withCanary gives service 0 subsets v1 and v2 and a 90/10 route between
// them; weightsChanged copies such a mesh with the weights at 73/27.
func withCanary(m *ir.Mesh, v1 uint32) *ir.Mesh {
	next := *m
	next.Services = append([]*ir.Service(nil), m.Services...)
	s := *m.Services[0]
	s.Subsets = []*ir.Subset{{Name: "v1", Labels: map[string]string{"app": s.Name}}, {Name: "v2", Labels: map[string]string{"app": s.Name}}}
	s.RouteSource = &ir.ObjectRef{Kind: "MeshRoute", Namespace: s.Namespace, Name: s.Name}
	s.Routes = []*ir.HTTPRoute{{Name: "canary", Source: *s.RouteSource, Destinations: []*ir.Destination{
		{Service: s.FQDN, Port: 80, Subset: "v1", Weight: v1}, {Service: s.FQDN, Port: 80, Subset: "v2", Weight: 100 - v1},
	}}}
	next.Services[0] = &s
	return &next
}

// A weight change is generated as the route configuration of its port
// alone (outbound parts patched, not generated whole), and real delta ADS
// clients receive exactly that route configuration and nothing else.
func TestWeightChangeSendsOneRouteConfiguration(t *testing.T) {
	mesh := withCanary(benchMesh(20, 3, 4), 90)
	srv := server.New(server.Options{})
	addr := serveForTest(t, srv)
	table := newProxyTable()
	if errs := table.update(mesh, srv, logr.Discard()); len(errs) > 0 {
		t.Fatal(errs)
	}
	clients := make([]*xdsclient.Delta, len(mesh.Proxies))
	seen := make([]int, len(clients))
	for i, p := range mesh.Proxies {
		c := xdsclient.DialDelta(t, addr, p.ID)
		c.Subscribe(t, resource.ClusterType)
		c.Subscribe(t, resource.ListenerType)
		c.Subscribe(t, resource.RouteType, "80")
		c.Subscribe(t, resource.EndpointType, clusterOf(mesh.Services[1]))
		c.WaitFor(t, deltaTimeout, func(st xdsclient.State) error {
			if len(st[resource.RouteType]) != 1 || len(st[resource.EndpointType]) != 1 || len(st[resource.ClusterType]) == 0 {
				return errors.New("route configuration, load assignment or clusters missing")
			}
			return nil
		})
		clients[i], seen[i] = c, len(c.Responses())
	}

	hashed := srv.ResourcesHashed()
	_ = table.update(withCanary(mesh, 73), srv, logr.Discard())
	if p := table.lastParts; p.whole != 0 || p.patched == 0 {
		t.Errorf("outbound parts after a weight change: %+v, want all patched", p)
	}
	// One route configuration per namespace (virtual hosts carry the
	// namespace's short host names), nothing else.
	if n, want := srv.ResourcesHashed()-hashed, uint64(len(table.outbound)); n != want {
		t.Errorf("the server hashed %d resources for one weight change, want %d (a route configuration per namespace)", n, want)
	}
	for i, c := range clients {
		waitResponses(t, c, seen[i], 1)
	}
	// Then a change every client receives as EDS: whatever the weight
	// change sent came before it on each stream.
	_ = table.update(withEndpointMoved(withCanary(mesh, 73), 1, 3), srv, logr.Discard())
	for i, c := range clients {
		waitResponses(t, c, seen[i], 2)
		var got []string
		for _, r := range c.Responses()[seen[i]:] {
			got = append(got, r.TypeURL+" "+strings.Join(r.Names, ","))
		}
		want := []string{resource.RouteType + " 80", resource.EndpointType + " " + clusterOf(mesh.Services[1])}
		if !slices.Equal(got, want) {
			t.Errorf("proxy %d received %q, want %q", i, got, want)
		}
	}
}
