package server

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// consistentConfigs remembers the configurations found consistent, by the
// check and the type versions: versions are content hashes, so an equal key
// is equal content and the same verdict. Sidecars that share config (the
// runner hands them the same lists) pass the reference check once, not once
// each.
type consistentConfigs struct {
	mu   sync.Mutex
	keys map[string]struct{}
}

// maxConsistentConfigs bounds the set; it starts over when full.
const maxConsistentConfigs = 4096

// configKey is the check and the type URLs and versions, sorted. For
// Snapshot.Consistent(), which only follows the references of clusters
// (to load assignments) and listeners (to route configurations), the
// resources nothing is looked up in (load assignments, route
// configurations, secrets) count by their names: sidecars with different
// certificates or endpoints still share a verdict.
func configKey(check consistencyCheck, versions configVersions) string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(int(check)))
	for _, typeURL := range slices.Sorted(maps.Keys(versions)) {
		b.WriteByte(0)
		b.WriteString(typeURL)
		b.WriteByte(0)
		tv := versions[typeURL]
		if check == checkSnapshot && leafTypes[typeURL] {
			b.WriteString(tv.namesKey())
		} else {
			b.WriteString(tv.version)
		}
	}
	return b.String()
}

// leafTypes are the types Snapshot.Consistent() only checks the names of.
var leafTypes = map[string]bool{resourcev3.EndpointType: true, resourcev3.RouteType: true, resourcev3.SecretType: true}

// namesKey hashes the sorted names of the list (memoised on a shared list).
func (tv typeVersions) namesKey() string {
	if tv.shared != nil {
		return tv.shared.namesKey()
	}
	return namesHash(tv.resources)
}

func namesHash(resources map[string]*discoveryv3.Resource) string {
	return hashVersions(resources, func(*discoveryv3.Resource) string { return "" })
}

func (c *consistentConfigs) has(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.keys[key]
	return ok
}

func (c *consistentConfigs) add(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keys == nil || len(c.keys) >= maxConsistentConfigs {
		c.keys = map[string]struct{}{}
	}
	c.keys[key] = struct{}{}
}
