package generate

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// TestGoldenOutputsValid checks every case's output: ValidateAll on every
// resource and typed config, the reference checks, and go-control-plane's own
// snapshot consistency check.
func TestGoldenOutputsValid(t *testing.T) {
	for _, dir := range caseDirs(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			res, _ := generateCase(t, dir)
			if readCase(t, dir).Mesh.ProxyByID(readCase(t, dir).Proxy).Kind == ir.ProxyGRPC {
				checkValidGRPC(t, res)
				return
			}
			checkValid(t, res)
		})
	}
}

func checkValid(t *testing.T, res *Resources) {
	t.Helper()
	if err := res.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	snap, err := cachev3.NewSnapshot("1", res.ByType())
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.Consistent(); err != nil {
		t.Fatalf("snapshot not consistent: %v", err)
	}
}

// TestBrokenRouteIsAttributed: a rule to a cluster that does not exist yields
// an Error naming its MeshRoute, answers 500, and every other service still
// gets its configuration.
func TestBrokenRouteIsAttributed(t *testing.T) {
	reviews := newService("reviews", "default", withEndpoints(2, 1),
		withRoute("canary", dest("reviews.default.svc.cluster.local", 80, "v9", 100)))
	ratings := newService("ratings", "default", withClusterIP("10.96.0.2"), withEndpoints(1, 2))
	proxy := newProxy()

	res, err := ForProxy(newMesh(proxy, ratings, reviews), proxy)

	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("want Errors, got %v", err)
	}
	want := ir.ObjectRef{Kind: "MeshRoute", Namespace: "default", Name: "reviews"}
	if len(errs) != 1 || errs[0].Source == nil || *errs[0].Source != want {
		t.Fatalf("want one error on %s, got %v", want, errs)
	}
	if !strings.Contains(errs[0].Error(), "outbound|80|v9|reviews.default.svc.cluster.local") {
		t.Errorf("error does not name the missing cluster: %v", errs[0])
	}
	checkValid(t, res)
	for _, name := range []string{"outbound|80||ratings.default.svc.cluster.local", "outbound|80||reviews.default.svc.cluster.local"} {
		if !slices.ContainsFunc(res.Clusters, func(c *clusterv3.Cluster) bool { return c.Name == name }) {
			t.Errorf("cluster %s missing", name)
		}
	}
	hosts := routesByHost(res)
	if got := hosts["ratings.default.svc.cluster.local:80"]; len(got) != 1 || got[0].GetRoute().GetCluster() == "" {
		t.Errorf("ratings lost its default route: %v", got)
	}
	if got := hosts["reviews.default.svc.cluster.local:80"]; len(got) != 1 || got[0].GetDirectResponse().GetStatus() != 500 {
		t.Errorf("broken rule should answer 500: %v", got)
	}
}

func routesByHost(res *Resources) map[string][]*routev3.Route {
	out := map[string][]*routev3.Route{}
	for _, rc := range res.Routes {
		for _, vh := range rc.VirtualHosts {
			out[vh.Name] = append(out[vh.Name], vh.Routes...)
		}
	}
	return out
}

func TestForProxyFatal(t *testing.T) {
	proxy := newProxy()
	grpc := newProxy()
	grpc.Kind = ir.ProxyGRPC
	badMode := newProxy()
	badMode.Inbound[0].MTLS = "SOMETIMES"
	mesh := newMesh(proxy)
	for name, tc := range map[string]struct {
		mesh  *ir.Mesh
		proxy *ir.Proxy
	}{
		"nil mesh":      {nil, proxy},
		"nil proxy":     {mesh, nil},
		"grpc proxy":    {mesh, grpc},
		"bad mTLS mode": {mesh, badMode},
	} {
		t.Run(name, func(t *testing.T) {
			res, err := ForProxy(tc.mesh, tc.proxy)
			var errs Errors
			if err == nil || res != nil || errors.As(err, &errs) {
				t.Fatalf("want a fatal error and no resources, got %v, %v", res, err)
			}
		})
	}
}

// TestDeterministic: the same model, with services in any order, gives the
// same bytes.
func TestDeterministic(t *testing.T) {
	proxy := newProxy()
	svcs := []*ir.Service{
		newService("a", "default", withClusterIP("10.96.0.1"), withEndpoints(3, 1)),
		newService("b", "other", withClusterIP("10.96.0.2"), withEndpoints(3, 2)),
		newService("c", "default", withClusterIP("10.96.0.3"), withEndpoints(3, 3),
			withRoute("split", dest("a.default.svc.cluster.local", 80, "", 50), dest("b.other.svc.cluster.local", 80, "", 50))),
	}
	first := marshalAll(t, mustGenerate(t, newMesh(proxy, svcs...), proxy))
	reversed := slices.Clone(svcs)
	slices.Reverse(reversed)
	for range 3 {
		if got := marshalAll(t, mustGenerate(t, newMesh(proxy, reversed...), proxy)); got != first {
			t.Fatal("output differs between runs or input orders")
		}
	}
}

func mustGenerate(t *testing.T, mesh *ir.Mesh, proxy *ir.Proxy) *Resources {
	t.Helper()
	res, err := ForProxy(mesh, proxy)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func marshalAll(t *testing.T, res *Resources) string {
	t.Helper()
	var sb strings.Builder
	for _, typ := range []string{resource.ListenerType, resource.RouteType, resource.ClusterType, resource.EndpointType} {
		for _, m := range res.ByType()[typ] {
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			sb.Write(b)
		}
	}
	return sb.String()
}

// TestDoesNotMutateModel: generation reads the model and never writes it.
func TestDoesNotMutateModel(t *testing.T) {
	for _, dir := range caseDirs(t) {
		c := readCase(t, dir)
		before, _ := json.Marshal(c.Mesh)
		_, _ = ForProxy(&c.Mesh, c.Mesh.ProxyByID(c.Proxy))
		after, _ := json.Marshal(c.Mesh)
		if diff := cmp.Diff(string(before), string(after)); diff != "" {
			t.Errorf("%s: model changed:\n%s", dir, diff)
		}
	}
}

func TestByTypeHasEveryType(t *testing.T) {
	proxy := newProxy()
	res := mustGenerate(t, newMesh(proxy, newService("a", "default", withEndpoints(1, 1))), proxy)
	byType := res.ByType()
	for typ, want := range map[string]int{
		resource.ListenerType: 5, // virtualOutbound, 0.0.0.0_80, virtualInbound, prometheus, readiness
		resource.RouteType:    1,
		resource.ClusterType:  5, // outbound a, inbound 8080, PassthroughCluster, InboundPassthroughCluster, admin
		resource.EndpointType: 1,
		resource.SecretType:   0,
	} {
		if got, ok := byType[typ]; !ok || len(got) != want {
			t.Errorf("%s: got %d resources (present %v), want %d", typ, len(got), ok, want)
		}
	}
}
