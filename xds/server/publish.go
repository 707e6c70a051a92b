package server

import (
	"context"
	"fmt"
	"strings"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
)

// SetOption changes how SetProxyResourcesWith checks a snapshot.
type SetOption func(*setConfig)

type setConfig struct {
	check consistencyCheck
}

// ProxylessGRPC marks the node as a proxyless gRPC client: instead of
// Snapshot.Consistent(), which does not follow the RDS references of API
// listeners, the snapshot is checked by a variant that does.
func ProxylessGRPC() SetOption {
	return func(c *setConfig) { c.check = checkProxyless }
}

// SkipConsistencyCheck skips the cross-reference check altogether; every
// resource is still validated.
func SkipConsistencyCheck() SetOption {
	return func(c *setConfig) { c.check = checkNone }
}

// proxyConfig is what the server last published to a node, and the
// configuration before it: a response being sent while a new snapshot is
// set may carry either.
type proxyConfig struct {
	current, previous configVersions
	// check is how current was checked.
	check consistencyCheck
}

func (c *proxyConfig) find(typeURL, version string) (typeVersions, bool) {
	for _, cv := range []configVersions{c.current, c.previous} {
		if tv, ok := cv[typeURL]; ok && tv.version == version {
			return tv, true
		}
	}
	return typeVersions{}, false
}

// SetProxyResources validates and publishes a node's resources, keyed by
// type URL. Versions are content hashes: when nothing changed for the node it
// returns changed=false and leaves the cache alone. When a resource fails
// ValidateAll or the snapshot is inconsistent it returns an error and the
// node keeps its previous snapshot. Nodes of type grpc~ are checked as
// ProxylessGRPC, all others with Snapshot.Consistent(). The resources must
// not be modified afterwards.
func (s *Server) SetProxyResources(nodeID string, res map[string][]types.Resource) (changed bool, err error) {
	var opts []SetOption
	if isProxylessID(nodeID) {
		opts = append(opts, ProxylessGRPC())
	}
	return s.SetProxyResourcesWith(nodeID, res, opts...)
}

// SetProxyResourcesWith is SetProxyResources with the consistency check
// chosen by opts (Snapshot.Consistent() when none).
func (s *Server) SetProxyResourcesWith(nodeID string, res map[string][]types.Resource, opts ...SetOption) (changed bool, err error) {
	var cfg setConfig
	for _, o := range opts {
		o(&cfg)
	}
	snap, versions, err := s.buildSnapshot(nodeID, res, cfg.check)
	if err != nil {
		return false, fmt.Errorf("snapshot for %s: %w", nodeID, err)
	}
	return s.publish(nodeID, snap, versions, cfg.check)
}

// current returns the node's current config and how it was checked.
func (s *Server) current(nodeID string) (configVersions, consistencyCheck) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c := s.configs[nodeID]; c != nil {
		return c.current, c.check
	}
	return nil, checkNone
}

// buildSnapshot validates and versions the resources (each message once over
// the server's life, see internTable) and checks the snapshot's references.
// Only proxyless gRPC clients are served from the snapshot: for the other
// nodes it is made only for the check (nil when the check is known to pass,
// see sameReferences), and the resourceCache holds the versions.
func (s *Server) buildSnapshot(nodeID string, res map[string][]types.Resource, check consistencyCheck) (*cachev3.Snapshot, configVersions, error) {
	prev, prevCheck := s.current(nodeID)
	versions, err := s.interned.configVersions(res, prev)
	if err != nil {
		return nil, nil, err
	}
	proxyless := isProxylessID(nodeID)
	if !proxyless && (check == checkNone || (prevCheck == check && sameReferences(prev, versions))) {
		return nil, versions, nil
	}
	key := configKey(check, versions)
	known := s.consistent.has(key)
	if known && !proxyless {
		return nil, versions, nil
	}
	snap := &cachev3.Snapshot{VersionMap: make(map[string]map[string]string, len(versions))}
	for typeURL, tv := range versions {
		snap.Resources[cachev3.GetResponseType(typeURL)] = cachev3.NewResources(tv.version, res[typeURL])
		if proxyless {
			// Set here, ConstructVersionMap keeps it instead of hashing again.
			snap.VersionMap[typeURL] = tv.versionMap()
		}
	}
	if !known {
		if err := checkConsistency(snap, check); err != nil {
			return nil, nil, err
		}
		s.consistent.add(key)
	}
	return snap, versions, nil
}

func (s *Server) publish(nodeID string, snap *cachev3.Snapshot, versions configVersions, check consistencyCheck) (bool, error) {
	s.publishMu.Lock()
	defer s.publishMu.Unlock()
	dropped, changed := s.swapConfig(nodeID, versions, check)
	if !changed {
		return false, nil
	}
	s.interned.types.acquire(versions)
	s.interned.types.release(dropped)
	// Configs are updated first: the cache answers watches inside
	// SetSnapshot, and the response callbacks look the versions up.
	// SetSnapshot stores the snapshot before it can fail.
	var err error
	if isProxylessID(nodeID) {
		err = s.grpcCache.SetSnapshot(context.Background(), nodeID, snap)
	} else {
		s.sidecars.publish(nodeID, versions)
	}
	s.tracker.published(nodeID, versions.typeVersionMap())
	if err != nil {
		return true, fmt.Errorf("setting snapshot for %s: %w", nodeID, err)
	}
	s.log.V(1).Info("published xDS snapshot", "nodeID", nodeID)
	return true, nil
}

// swapConfig records versions as the node's current config, unless they
// equal it; it reports whether they changed, and the configuration no
// longer held (the one before the previous).
func (s *Server) swapConfig(nodeID string, versions configVersions, check consistencyCheck) (dropped configVersions, changed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.configs[nodeID]
	if old != nil && old.current.equal(versions) {
		return nil, false
	}
	next := &proxyConfig{current: versions, check: check}
	if old != nil {
		next.previous, dropped = old.current, old.previous
	}
	s.configs[nodeID] = next
	return dropped, true
}

// RemoveProxy clears a node's config. go-control-plane's ClearSnapshot
// also drops the node's open state-of-the-world watches: such a stream
// still open afterwards gets new config only after its next request. Open
// delta watches stay, and are answered when the node is published again.
func (s *Server) RemoveProxy(nodeID string) {
	s.publishMu.Lock()
	defer s.publishMu.Unlock()
	s.mu.Lock()
	if old := s.configs[nodeID]; old != nil {
		s.interned.types.release(old.current)
		s.interned.types.release(old.previous)
	}
	delete(s.configs, nodeID)
	s.mu.Unlock()
	if isProxylessID(nodeID) {
		s.grpcCache.ClearSnapshot(nodeID)
	} else {
		s.sidecars.publish(nodeID, nil)
	}
	s.tracker.published(nodeID, nil)
}

// isProxylessID reports whether a node ID is of type grpc~.
func isProxylessID(nodeID string) bool {
	return strings.HasPrefix(nodeID, string(NodeGRPC)+nodeIDSeparator)
}

// publishedResources returns the resource versions published to a node for
// a type at a version, or nil when the server no longer holds them.
func (s *Server) publishedResources(nodeID, typeURL, version string) map[string]string {
	s.mu.RLock()
	c := s.configs[nodeID]
	s.mu.RUnlock()
	if c == nil {
		return nil
	}
	if tv, ok := c.find(typeURL, version); ok {
		if tv.shared != nil {
			return tv.shared.versions()
		}
		return tv.versionMap()
	}
	return nil
}

// sharedVersions returns the name → version map of a list published to a
// node for a type at a version when other nodes may share it, else nil.
// The map is shared: it must not be modified.
func (s *Server) sharedVersions(nodeID, typeURL, version string) map[string]string {
	s.mu.RLock()
	c := s.configs[nodeID]
	s.mu.RUnlock()
	if c == nil {
		return nil
	}
	if tv, ok := c.find(typeURL, version); ok && tv.shared != nil {
		return tv.shared.versions()
	}
	return nil
}
