package server

import (
	"testing"
	"time"

	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

func TestPublishedConfig(t *testing.T) {
	s := New(Options{})
	node := "sidecar~10.0.0.7~web-0.shop~shop.svc.cluster.local"
	if _, ok := s.PublishedConfig(node); ok {
		t.Fatal("config of a node never published")
	}
	// Published out of name order: read back sorted.
	res := sidecarConfig(t, edsCluster("zeta", time.Second), edsCluster("alpha", time.Second))
	if _, err := s.SetProxyResources(node, res); err != nil {
		t.Fatal(err)
	}
	cfg, ok := s.PublishedConfig(node)
	if !ok {
		t.Fatal("no config after publishing")
	}
	st, _ := s.ProxyStatus(node)
	clusters := cfg.Resources[resourcev3.ClusterType]
	if len(clusters) != 2 || cachev3.GetResourceName(clusters[0]) != "alpha" || cachev3.GetResourceName(clusters[1]) != "zeta" {
		t.Errorf("clusters %v, want alpha then zeta", clusters)
	}
	if cfg.Versions[resourcev3.ClusterType] != st.Published[resourcev3.ClusterType] {
		t.Errorf("version %q, the status says %q", cfg.Versions[resourcev3.ClusterType], st.Published[resourcev3.ClusterType])
	}
	if got, want := cfg.ResourceVersions[resourcev3.ClusterType]["alpha"], mustVersion(t, clusters[0]); got != want {
		t.Errorf("alpha's version %q, want its content hash %q", got, want)
	}
	s.RemoveProxy(node)
	if _, ok := s.PublishedConfig(node); ok {
		t.Error("config still read after RemoveProxy")
	}
}
