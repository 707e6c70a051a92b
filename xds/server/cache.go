package server

import (
	"cmp"
	"maps"
	"slices"
	"sync"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// resourceCache is the cache of sidecar nodes (go-control-plane's
// cachev3.Cache: CreateDeltaWatch, CreateWatch and Fetch), in place of the
// snapshot cache. It holds each node's published configVersions, whose
// resources the nodes that share config share:
//
//   - every resource is sent as the *discoveryv3.Resource the intern table
//     marshalled once (typeVersions.wire), so a resource that 1000 proxies
//     receive is marshalled once, and every response that carries it points
//     to the same bytes;
//   - a publish wakes a node's watch only when the version of the watch's
//     type changed for that node, and the watch answers only when a resource
//     it subscribed to changed: an endpoint change reaches the streams
//     subscribed to that endpoint assignment, with that one resource;
//   - what a stream keeps (the go-control-plane subscription's returned
//     resources) maps the names it was sent to the shared version strings.
//
// State-of-the-world watches are in cache_sotw.go.
type resourceCache struct {
	mu     sync.Mutex
	nodes  map[string]*cacheNode
	nextID int64
}

// cacheNode is one node's published config and open delta watches.
type cacheNode struct {
	mu sync.Mutex
	// gone is set once the node is dropped from the cache's map (no config,
	// no watch); whoever holds it then looks it up again.
	gone    bool
	config  configVersions
	watches map[int64]watch
	// rewarm are updated clusters whose endpoint assignments no open watch
	// could resend at the publish (updatedClusters): the node's next
	// endpoint watch does.
	rewarm []string
}

// watch is an open watch of either protocol.
type watch interface {
	typeURL() string
	// publish answers the watch from the type's new versions when it has
	// to, resending the named resources even when unchanged (rewarm); it
	// reports whether the watch is done (answered or dropped).
	publish(tv typeVersions, rewarm []string) bool
}

var _ cachev3.Cache = (*resourceCache)(nil)

// deltaWatch is an open delta watch: the stream's latest request for a type
// and its subscription, immutable until the watch is answered or cancelled.
type deltaWatch struct {
	req *discoveryv3.DeltaDiscoveryRequest
	sub cachev3.Subscription
	out chan cachev3.DeltaResponse
	// seen is the list the watch was last found up to date with: the
	// stream holds seen's versions of every name it subscribed (of all, for
	// a wildcard), so a later list differs for it only in the names that
	// changed between the two (changedNames). Nil before any list.
	seen *typeVersions
}

func newResourceCache() *resourceCache {
	return &resourceCache{nodes: map[string]*cacheNode{}}
}

// lock returns the node's entry, created if needed, locked.
func (c *resourceCache) lock(nodeID string) *cacheNode {
	for {
		c.mu.Lock()
		n := c.nodes[nodeID]
		if n == nil {
			n = &cacheNode{watches: map[int64]watch{}}
			c.nodes[nodeID] = n
		}
		c.mu.Unlock()
		n.mu.Lock()
		if !n.gone {
			return n
		}
		n.mu.Unlock()
	}
}

// unlock unlocks a node's entry, dropping it when it holds nothing.
func (c *resourceCache) unlock(nodeID string, n *cacheNode) {
	if n.config != nil || len(n.watches) > 0 {
		n.mu.Unlock()
		return
	}
	n.gone = true
	n.mu.Unlock()
	c.mu.Lock()
	if c.nodes[nodeID] == n {
		delete(c.nodes, nodeID)
	}
	c.mu.Unlock()
}

// CreateDeltaWatch implements cachev3.ConfigWatcher: it answers at once when
// the node's config has something the stream does not, and otherwise keeps
// the watch until a publish does.
func (c *resourceCache) CreateDeltaWatch(req *discoveryv3.DeltaDiscoveryRequest, sub cachev3.Subscription, out chan cachev3.DeltaResponse) (func(), error) {
	nodeID := req.GetNode().GetId()
	w := &deltaWatch{req: req, sub: sub, out: out}
	n := c.lock(nodeID)
	defer c.unlock(nodeID, n)
	if tv, ok := n.config[req.GetTypeUrl()]; ok {
		if w.respond(tv) {
			return nil, nil
		}
		w.seen = &tv
		if req.GetTypeUrl() == resourcev3.EndpointType && len(n.rewarm) > 0 {
			rewarm := n.rewarm
			n.rewarm = nil
			if w.publish(tv, rewarm) {
				return nil, nil
			}
		}
	}
	return c.open(nodeID, n, w), nil
}

// open adds a watch to a node; n is locked.
func (c *resourceCache) open(nodeID string, n *cacheNode, w watch) func() {
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	c.mu.Unlock()
	n.watches[id] = w
	return func() { c.cancel(nodeID, id) }
}

// cancel drops an open watch; go-control-plane calls it when the stream
// sends the type's next request or closes.
func (c *resourceCache) cancel(nodeID string, id int64) {
	n := c.lock(nodeID)
	delete(n.watches, id)
	c.unlock(nodeID, n)
}

// publish makes config the node's config (nil: none) and answers the watches
// of the types whose version changed, in go-control-plane's ADS order.
func (c *resourceCache) publish(nodeID string, config configVersions) {
	n := c.lock(nodeID)
	defer c.unlock(nodeID, n)
	old := n.config
	n.config = config
	if config == nil {
		return
	}
	if updated := updatedClusters(old, config); len(updated) > 0 {
		// Sorted and unique: at most one entry per cluster, also for a node
		// that never opens an endpoint watch.
		n.rewarm = slices.Compact(slices.Sorted(slices.Values(append(n.rewarm, updated...))))
	}
	for _, id := range n.orderedWatches() {
		w := n.watches[id]
		tv, ok := config[w.typeURL()]
		if !ok {
			continue
		}
		var resend []string
		if dw, isDelta := w.(*deltaWatch); isDelta && dw.typeURL() == resourcev3.EndpointType {
			resend, n.rewarm = n.rewarm, nil
		}
		if prev, had := old[w.typeURL()]; had && prev.version == tv.version && len(resend) == 0 {
			continue
		}
		if w.publish(tv, resend) {
			delete(n.watches, id)
		}
	}
}

// updatedClusters are the clusters that both configs have at different
// versions. Envoy warms an updated EDS cluster until its endpoint
// assignment (named as the cluster) arrives again, but a delta server sends
// only what changed: without a resend the cluster waits for Envoy's initial
// fetch timeout (15 s) before the update applies. The orderedWatches put
// the endpoints after the clusters on the stream.
func updatedClusters(old, config configVersions) []string {
	prev, had := old[resourcev3.ClusterType]
	now := config[resourcev3.ClusterType]
	if !had || prev.version == now.version {
		return nil
	}
	var names []string
	for _, name := range changedNames(prev, now) {
		_, before := prev.resources[name]
		_, after := now.resources[name]
		if before && after {
			names = append(names, name)
		}
	}
	return names
}

// orderedWatches lists the watch IDs by response type, the order in which
// go-control-plane's ADS snapshot cache answers them.
func (n *cacheNode) orderedWatches() []int64 {
	ids := slices.Collect(maps.Keys(n.watches))
	slices.SortFunc(ids, func(a, b int64) int {
		ta := cachev3.GetResponseType(n.watches[a].typeURL())
		tb := cachev3.GetResponseType(n.watches[b].typeURL())
		return cmp.Or(cmp.Compare(ta, tb), cmp.Compare(a, b))
	})
	return ids
}

// published returns the node's config, nil when none.
func (c *resourceCache) published(nodeID string) configVersions {
	c.mu.Lock()
	n := c.nodes[nodeID]
	c.mu.Unlock()
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.config
}

// watchCount is the number of open watches of a node, delta or state of the world.
func (c *resourceCache) watchCount(nodeID string, delta bool) int {
	c.mu.Lock()
	n := c.nodes[nodeID]
	c.mu.Unlock()
	if n == nil {
		return 0
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	count := 0
	for _, w := range n.watches {
		if _, ok := w.(*deltaWatch); ok == delta {
			count++
		}
	}
	return count
}

func (w *deltaWatch) typeURL() string { return w.req.GetTypeUrl() }

func (w *deltaWatch) publish(tv typeVersions, rewarm []string) bool {
	if w.seen == nil {
		if w.respond(tv) {
			return true
		}
		w.seen = &tv
		return false
	}
	resp := w.changes(*w.seen, tv, rewarm)
	if resp == nil {
		w.seen = &tv
		return false
	}
	w.out <- resp
	return true
}

// changes is the answer to a watch up to date with seen from tv, nil when
// none of the names that changed between them concerns it: O(changed
// names), where response is O(subscribed names).
func (w *deltaWatch) changes(seen, tv typeVersions, rewarm []string) *cachev3.DeltaPassthroughResponse {
	returned, subscribed := w.sub.ReturnedResources(), w.sub.SubscribedResources()
	var updated []*discoveryv3.Resource
	var removed []string
	names := changedNames(seen, tv)
	if len(rewarm) > 0 {
		names = slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(names), rewarm...))))
	}
	for _, name := range names {
		if _, ok := subscribed[name]; !ok && !w.sub.IsWildcard() {
			continue
		}
		if r, ok := tv.resources[name]; ok {
			updated = append(updated, r)
		} else if _, had := returned[name]; had {
			removed = append(removed, name)
		}
	}
	if len(updated) == 0 && len(removed) == 0 {
		return nil
	}
	next := maps.Clone(returned)
	for _, r := range updated {
		next[r.GetName()] = r.GetVersion()
	}
	for _, name := range removed {
		delete(next, name)
	}
	return w.passthrough(tv, updated, removed, next)
}

// respond sends the watch what tv has that the stream does not, and reports
// whether it did. Like go-control-plane's snapshot cache it answers a
// stream's first wildcard request even when there is nothing to send.
// The channel has room: a stream has at most one open watch per type.
func (w *deltaWatch) respond(tv typeVersions) bool {
	resp := w.response(tv)
	if resp == nil {
		return false
	}
	w.out <- resp
	return true
}

// response is the answer to the watch from tv, nil when there is none.
func (w *deltaWatch) response(tv typeVersions) *cachev3.DeltaPassthroughResponse {
	if w.req.GetResponseNonce() != "" && upToDate(w.sub, tv) {
		// Most watches are opened by an ACK of what tv holds: found
		// without building the stream's next versions.
		return nil
	}
	var updated []*discoveryv3.Resource
	var removed []string
	var next map[string]string
	if w.sub.IsWildcard() {
		updated, removed, next = wildcardDiff(w.sub.ReturnedResources(), tv)
	} else {
		updated, removed, next = subscribedDiff(w.sub, tv)
	}
	if len(updated) == 0 && len(removed) == 0 && (!w.sub.IsWildcard() || w.req.GetResponseNonce() != "") {
		return nil
	}
	return w.passthrough(tv, updated, removed, next)
}

func (w *deltaWatch) passthrough(tv typeVersions, updated []*discoveryv3.Resource, removed []string, next map[string]string) *cachev3.DeltaPassthroughResponse {
	return &cachev3.DeltaPassthroughResponse{
		DeltaRequest:   w.req,
		NextVersionMap: next,
		DeltaDiscoveryResponse: &discoveryv3.DeltaDiscoveryResponse{
			Resources:         updated,
			RemovedResources:  removed,
			TypeUrl:           w.req.GetTypeUrl(),
			SystemVersionInfo: tv.version,
		},
	}
}

// upToDate reports whether the stream holds tv's version of every name it
// subscribed to (of every name, for a wildcard) and nothing tv lacks.
func upToDate(sub cachev3.Subscription, tv typeVersions) bool {
	returned := sub.ReturnedResources()
	if sub.IsWildcard() {
		if len(returned) != len(tv.resources) {
			return false
		}
		for name, r := range tv.resources {
			if v, ok := returned[name]; !ok || v != r.GetVersion() {
				return false
			}
		}
		return true
	}
	for name := range sub.SubscribedResources() {
		r, ok := tv.resources[name]
		v, had := returned[name]
		if ok != had || (ok && v != r.GetVersion()) {
			return false
		}
	}
	return true
}

// wildcardDiff is, for a wildcard subscription, the resources of tv the
// stream lacks or has at another version, the names it has that tv does
// not, and the stream's versions afterwards: tv's, copied (the server's
// subscription edits its map) but with the version strings shared.
func wildcardDiff(returned map[string]string, tv typeVersions) (updated []*discoveryv3.Resource, removed []string, next map[string]string) {
	next = make(map[string]string, len(tv.resources))
	for name, r := range tv.resources {
		if v, ok := returned[name]; !ok || v != r.GetVersion() {
			updated = append(updated, r)
		}
		next[name] = r.GetVersion()
	}
	for name := range returned {
		if _, ok := tv.resources[name]; !ok {
			removed = append(removed, name)
		}
	}
	return updated, removed, next
}

// subscribedDiff is wildcardDiff for a subscription to names: only those
// names are sent, removed or kept.
func subscribedDiff(sub cachev3.Subscription, tv typeVersions) (updated []*discoveryv3.Resource, removed []string, next map[string]string) {
	returned := sub.ReturnedResources()
	next = make(map[string]string, len(sub.SubscribedResources()))
	for name := range sub.SubscribedResources() {
		r, ok := tv.resources[name]
		if !ok {
			if _, had := returned[name]; had {
				removed = append(removed, name)
			}
			continue
		}
		if v, had := returned[name]; !had || v != r.GetVersion() {
			updated = append(updated, r)
		}
		next[name] = r.GetVersion()
	}
	return updated, removed, next
}
