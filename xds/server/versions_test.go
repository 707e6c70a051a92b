package server

import (
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

func mustConfigVersions(t *testing.T, res map[string][]types.Resource) configVersions {
	t.Helper()
	v, err := newConfigVersions(res)
	if err != nil {
		t.Fatalf("newConfigVersions: %v", err)
	}
	return v
}

func TestConfigVersionsFollowContent(t *testing.T) {
	base := mustConfigVersions(t, sidecarConfig(t, edsCluster("a", time.Second), edsCluster("b", time.Second)))

	reordered := sidecarConfig(t, edsCluster("b", time.Second), edsCluster("a", time.Second))
	reordered[resourcev3.RouteType] = []types.Resource{routeConfig(testRoute, "a")}
	if !base.equal(mustConfigVersions(t, reordered)) {
		t.Error("equal content in another order got other versions")
	}

	changed := mustConfigVersions(t, sidecarConfig(t, edsCluster("a", time.Second), edsCluster("b", 2*time.Second)))
	for _, typeURL := range knownTypeURLs() {
		same := base[typeURL].version == changed[typeURL].version
		if same == (typeURL == resourcev3.ClusterType) {
			t.Errorf("%s: version unchanged = %v after changing only cluster b", typeURL, same)
		}
	}
	if a, b := changed[resourcev3.ClusterType].resources, base[resourcev3.ClusterType].resources; a["a"].GetVersion() != b["a"].GetVersion() || a["b"].GetVersion() == b["b"].GetVersion() {
		t.Errorf("resource versions %v -> %v: want only b changed", b, a)
	}
}

func TestEmptyTypesAreVersioned(t *testing.T) {
	v := mustConfigVersions(t, nil)
	if len(v) != len(knownTypeURLs()) {
		t.Fatalf("%d types versioned, want %d", len(v), len(knownTypeURLs()))
	}
	for typeURL, tv := range v {
		if tv.version == "" || tv.version != deriveTypeVersion(nil) {
			t.Errorf("%s: empty set version %q, want %q", typeURL, tv.version, deriveTypeVersion(nil))
		}
	}
}

func TestTypeVersionSeparatesNamesFromVersions(t *testing.T) {
	a := deriveTypeVersion(map[string]string{"ab": "c"})
	b := deriveTypeVersion(map[string]string{"a": "bc"})
	if a == b {
		t.Error("different (name, version) pairs hash the same")
	}
}
