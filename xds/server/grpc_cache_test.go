package server

import (
	"testing"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

const grpcNode = "grpc~10.0.0.8~client-0.shop~shop.svc.cluster.local"

// TestProxylessClientGetsTheListenersItNames: a gRPC client asks, state of
// the world, only for the listeners of the targets it dials. It is answered
// with those, although its snapshot holds more (an ADS-mode cache would wait
// for a request naming them all), while sidecars keep the ADS-mode cache.
func TestProxylessClientGetsTheListenersItNames(t *testing.T) {
	s := startServer(t)
	res := map[string][]types.Resource{
		resourcev3.ListenerType: {apiListener(t, "a.shop:80", testRoute), apiListener(t, "b.shop:80", testRoute)},
		resourcev3.RouteType:    {routeConfig(testRoute, "c1")},
	}
	if _, err := s.SetProxyResources(grpcNode, res); err != nil {
		t.Fatal(err)
	}
	c := s.sotw(t)
	c.send(&discoveryv3.DiscoveryRequest{Node: xdsNode(grpcNode), TypeUrl: resourcev3.ListenerType, ResourceNames: []string{"a.shop:80"}})
	resp := c.recv()
	if got := len(resp.GetResources()); got != 1 {
		t.Fatalf("got %d listeners, want only a.shop:80", got)
	}
	if s.sidecars.published(grpcNode) != nil {
		t.Error("the sidecars' cache holds a proxyless node's config")
	}
}
