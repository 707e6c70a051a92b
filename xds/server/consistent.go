package server

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
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

// configKey is the check and the type URLs and versions, sorted.
func configKey(check consistencyCheck, versions configVersions) string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(int(check)))
	for _, typeURL := range slices.Sorted(maps.Keys(versions)) {
		b.WriteByte(0)
		b.WriteString(typeURL)
		b.WriteByte(0)
		b.WriteString(versions[typeURL].version)
	}
	return b.String()
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
