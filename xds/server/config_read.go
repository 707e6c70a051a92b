package server

import (
	"slices"
	"strings"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
)

// PublishedConfig is the configuration the server currently serves one node.
type PublishedConfig struct {
	// Versions maps type URL to the type's version.
	Versions map[string]string
	// Resources maps type URL to the resources of that type, sorted by
	// name. They are the published messages themselves, shared with the
	// cache: callers must not modify them.
	Resources map[string][]types.Resource
	// ResourceVersions maps type URL and resource name to the resource's
	// content version.
	ResourceVersions map[string]map[string]string
}

// PublishedConfig returns what the server serves a node now, or false when
// nothing is published for it. It is for reading (the debug endpoint): the
// resources are shared and must not be modified.
func (s *Server) PublishedConfig(nodeID string) (PublishedConfig, bool) {
	s.mu.RLock()
	c := s.configs[nodeID]
	s.mu.RUnlock()
	if c == nil {
		return PublishedConfig{}, false
	}
	out := PublishedConfig{
		Versions:         c.current.typeVersionMap(),
		Resources:        make(map[string][]types.Resource, len(c.current)),
		ResourceVersions: make(map[string]map[string]string, len(c.current)),
	}
	for typeURL, tv := range c.current {
		items := slices.Clone(tv.items)
		slices.SortStableFunc(items, func(a, b types.Resource) int {
			return strings.Compare(cachev3.GetResourceName(a), cachev3.GetResourceName(b))
		})
		out.Resources[typeURL] = items
		out.ResourceVersions[typeURL] = tv.versionMap()
	}
	return out, true
}
