package server

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

// The pipeline (xds/runner) publishes through this shape.
var _ interface {
	SetProxyResources(nodeID string, res map[string][]types.Resource) (bool, error)
	RemoveProxy(nodeID string)
	InSyncProxies() int
} = (*Server)(nil)

func TestUnchangedResourcesLeaveTheCacheAlone(t *testing.T) {
	s := New(Options{})
	if changed, err := s.SetProxyResources(testNode, sidecarConfig(t, edsCluster("a", time.Second), edsCluster("b", time.Second))); err != nil || !changed {
		t.Fatalf("SetProxyResources = %v, %v; want true, nil", changed, err)
	}
	before, err := s.cachedConfig(testNode)
	if err != nil {
		t.Fatal(err)
	}
	// Fresh but equal messages, in another order.
	again := sidecarConfig(t, edsCluster("b", time.Second), edsCluster("a", time.Second))
	again[resourcev3.RouteType] = []types.Resource{routeConfig(testRoute, "a")}
	changed, err := s.SetProxyResources(testNode, again)
	if err != nil || changed {
		t.Fatalf("SetProxyResources = %v, %v; want false, nil", changed, err)
	}
	if after, _ := s.cachedConfig(testNode); after != before {
		t.Error("unchanged resources replaced the cached config")
	}
}

func TestInvalidResourcesAreRefused(t *testing.T) {
	badTimeout := edsCluster("c1", time.Second)
	badTimeout.ConnectTimeout = durationpb.New(-time.Second)
	tests := map[string]struct {
		mutate  func(map[string][]types.Resource)
		wantErr string
	}{
		"cluster fails ValidateAll": {
			mutate:  func(r map[string][]types.Resource) { r[resourcev3.ClusterType] = []types.Resource{badTimeout} },
			wantErr: "ConnectTimeout",
		},
		"listener names a missing route": {
			mutate:  func(r map[string][]types.Resource) { delete(r, resourcev3.RouteType) },
			wantErr: resourcev3.RouteType,
		},
		"endpoints without a cluster": {
			mutate: func(r map[string][]types.Resource) {
				r[resourcev3.EndpointType] = append(r[resourcev3.EndpointType], endpoints("orphan", "10.2.0.1"))
			},
			wantErr: resourcev3.EndpointType,
		},
		"unknown type URL": {
			mutate:  func(r map[string][]types.Resource) { r["type.googleapis.com/example.Thing"] = nil },
			wantErr: "unknown resource type",
		},
		"message of another type": {
			mutate: func(r map[string][]types.Resource) {
				r[resourcev3.ListenerType] = []types.Resource{edsCluster("c1", time.Second)}
			},
			wantErr: "message is a type.googleapis.com/envoy.config.cluster.v3.Cluster",
		},
		"duplicate names": {
			mutate: func(r map[string][]types.Resource) {
				r[resourcev3.ClusterType] = append(r[resourcev3.ClusterType], edsCluster("c1", 2*time.Second))
			},
			wantErr: "duplicate resource name",
		},
		"nil resource": {
			mutate: func(r map[string][]types.Resource) {
				r[resourcev3.ClusterType] = append(r[resourcev3.ClusterType], (*clusterv3.Cluster)(nil))
			},
			wantErr: "nil resource",
		},
		"nameless resource": {
			mutate: func(r map[string][]types.Resource) {
				r[resourcev3.ClusterType] = append(r[resourcev3.ClusterType], edsCluster("", time.Second))
			},
			wantErr: "no name",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := New(Options{})
			good := sidecarConfig(t, edsCluster("c1", time.Second))
			if _, err := s.SetProxyResources(testNode, good); err != nil {
				t.Fatalf("valid resources: %v", err)
			}
			before, _ := s.cachedConfig(testNode)
			published := s.ProxyStatuses()[0].Published

			bad := sidecarConfig(t, edsCluster("c1", time.Second))
			tc.mutate(bad)
			changed, err := s.SetProxyResources(testNode, bad)
			if err == nil || changed || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("SetProxyResources = %v, %v; want an error containing %q", changed, err, tc.wantErr)
			}
			if after, _ := s.cachedConfig(testNode); after != before {
				t.Error("refused resources replaced the cached config")
			}
			if got := s.ProxyStatuses()[0].Published; fmt.Sprint(got) != fmt.Sprint(published) {
				t.Errorf("published versions changed to %v", got)
			}
		})
	}
}

func TestRefusedResourcesKeepServingThePreviousSnapshot(t *testing.T) {
	s := startServer(t)
	s.set(t, testNode, sidecarConfig(t, edsCluster("c1", time.Second)))
	version := s.mustStatus(t, testNode).Published[resourcev3.ClusterType]

	bad := edsCluster("c2", time.Second)
	bad.LbPolicy = clusterv3.Cluster_LbPolicy(99)
	if _, err := s.SetProxyResources(testNode, sidecarConfig(t, bad)); err == nil {
		t.Fatal("cluster with an undefined lb_policy was accepted")
	}

	c := s.sotw(t)
	c.send(&discoveryv3.DiscoveryRequest{Node: xdsNode(testNode), TypeUrl: resourcev3.ClusterType})
	checkSotW(t, c.recv(), resourcev3.ClusterType, version, "c1")
}

func TestProxylessConsistency(t *testing.T) {
	missingRoute := func(t *testing.T) map[string][]types.Resource {
		r := proxylessConfig(t, edsCluster("c1", time.Second))
		delete(r, resourcev3.RouteType)
		return r
	}
	tests := map[string]struct {
		res     func(t *testing.T) map[string][]types.Resource
		opts    []SetOption
		wantErr bool
	}{
		"Consistent() ignores API listeners": {res: func(t *testing.T) map[string][]types.Resource {
			return proxylessConfig(t, edsCluster("c1", time.Second))
		}, wantErr: true},
		"proxyless check follows API listeners": {res: func(t *testing.T) map[string][]types.Resource {
			return proxylessConfig(t, edsCluster("c1", time.Second))
		}, opts: []SetOption{ProxylessGRPC()}},
		"proxyless check finds a missing route": {res: missingRoute, opts: []SetOption{ProxylessGRPC()}, wantErr: true},
		"skipped check":                         {res: missingRoute, opts: []SetOption{SkipConsistencyCheck()}},
		"proxyless check still validates": {res: func(t *testing.T) map[string][]types.Resource {
			return proxylessConfig(t, edsCluster("c1", 0))
		}, opts: []SetOption{ProxylessGRPC()}, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := New(Options{}).SetProxyResourcesWith("grpc~10.0.0.3~client-0.shop~shop.svc.cluster.local", tc.res(t), tc.opts...)
			if (err != nil) != tc.wantErr {
				t.Errorf("SetProxyResources error = %v, want error: %v", err, tc.wantErr)
			}
		})
	}
}

func TestNodeTypeSelectsTheConsistencyCheck(t *testing.T) {
	const grpcNode = "grpc~10.0.0.3~client-0.shop~shop.svc.cluster.local"
	s := New(Options{})
	if _, err := s.SetProxyResources(grpcNode, proxylessConfig(t, edsCluster("c1", time.Second))); err != nil {
		t.Errorf("proxyless config for a grpc~ node: %v", err)
	}
	if _, err := s.SetProxyResources(testNode, proxylessConfig(t, edsCluster("c1", time.Second))); err == nil {
		t.Error("proxyless config for a sidecar~ node passed Snapshot.Consistent()")
	}
}

// cachedConfig identifies the config the cache holds for a node.
func (s *Server) cachedConfig(node string) (unsafe.Pointer, error) {
	c := s.sidecars.published(node)
	if c == nil {
		return nil, fmt.Errorf("no config cached for %s", node)
	}
	return reflect.ValueOf(c).UnsafePointer(), nil
}

func TestRemoveProxy(t *testing.T) {
	s := New(Options{})
	res := sidecarConfig(t, edsCluster("c1", time.Second))
	if _, err := s.SetProxyResources(testNode, res); err != nil {
		t.Fatalf("SetProxyResources: %v", err)
	}
	s.RemoveProxy(testNode)
	if _, err := s.cachedConfig(testNode); err == nil {
		t.Error("config still cached after RemoveProxy")
	}
	if _, ok := s.ProxyStatus(testNode); ok {
		t.Error("status of a removed, disconnected node still reported")
	}
	if changed, err := s.SetProxyResources(testNode, res); err != nil || !changed {
		t.Errorf("SetProxyResources after RemoveProxy = %v, %v; want true, nil", changed, err)
	}
}

// TestConcurrentUse runs publishing, removal, streams and status reads
// together; its value is under -race.
func TestConcurrentUse(t *testing.T) {
	s := startServer(t)
	d := s.delta(t)
	d.send(&discoveryv3.DeltaDiscoveryRequest{Node: xdsNode(testNode), TypeUrl: resourcev3.ClusterType})

	// Built here: t.Fatal must not run on other goroutines.
	var configs [3]map[string][]types.Resource
	for i := range configs {
		configs[i] = sidecarConfig(t, edsCluster("c1", time.Duration(1+i)*time.Second))
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			node := fmt.Sprintf("sidecar~10.0.1.%d~web-%d.shop~shop.svc.cluster.local", w, w)
			for i := range 20 {
				for _, n := range []string{testNode, node} {
					if _, err := s.SetProxyResources(n, configs[i%len(configs)]); err != nil {
						t.Errorf("SetProxyResources: %v", err)
					}
				}
				_ = s.ProxyStatuses()
				if i%5 == 4 {
					s.RemoveProxy(node)
				}
			}
		})
	}
	wg.Wait()
	// The stream still converges on the last published version.
	final := edsCluster("c1", 5*time.Second)
	s.set(t, testNode, sidecarConfig(t, final))
	want := mustVersion(t, final)
	eventually(t, "the final cluster", func() bool {
		r := d.recv()
		d.send(deltaAckOf(r))
		for _, res := range r.GetResources() {
			if res.GetVersion() == want {
				return true
			}
		}
		return false
	})
}

// Sidecars whose configs have the same references (equal clusters and
// listeners, the same names of the rest) pass the reference check once (one
// verdict remembered), and a config with a missing reference is still refused.
func TestConsistencyVerdictIsSharedByEqualConfigs(t *testing.T) {
	s := New(Options{})
	for i := range 3 {
		node := fmt.Sprintf("sidecar~10.0.0.%d~app-%d.shop~shop.svc.cluster.local", i+1, i)
		// Endpoints differ by node: Consistent() looks at their names only.
		res := sidecarConfig(t, edsCluster("a", time.Second))
		res[resourcev3.EndpointType] = []types.Resource{endpoints("a", fmt.Sprintf("10.1.0.%d", i+1))}
		if _, err := s.SetProxyResources(node, res); err != nil {
			t.Fatalf("%s: %v", node, err)
		}
	}
	if n := len(s.consistent.keys); n != 1 {
		t.Errorf("%d consistency verdicts remembered for three configs with the same references, want 1", n)
	}
	bad := sidecarConfig(t, edsCluster("a", time.Second))
	delete(bad, resourcev3.RouteType)
	if _, err := s.SetProxyResources("sidecar~10.0.0.9~app-9.shop~shop.svc.cluster.local", bad); err == nil {
		t.Error("a config whose listener names a missing route was accepted")
	}
}
