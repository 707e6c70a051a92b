package server

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
)

// streamKey identifies a stream. Stream IDs are counted separately by each
// go-control-plane server instance (one per Serve call) and by its
// state-of-the-world and delta halves.
type streamKey struct {
	instance int64
	delta    bool
	id       int64
}

// streamState is what the tracker keeps per open stream.
type streamState struct {
	// node is the node ID, set by the stream's first request that names one.
	node string
	// sent maps type URL to the last response sent on this stream.
	sent map[string]sentResponse
}

// sentResponse is a response remembered until the client answers it.
type sentResponse struct {
	nonce   string
	version string
	// resources: for state of the world, every resource in the response
	// (nil when unknown); for delta, the updated resources.
	resources map[string]string
	// removed lists the delta response's removed_resources.
	removed []string
	delta   bool
}

// ackedResources is the node's resource set once it ACKs s, given the set it
// had ACKed before.
func (s sentResponse) ackedResources(prev map[string]string) map[string]string {
	if !s.delta || (len(prev) == 0 && len(s.removed) == 0) {
		// The response's own map: the tracker drops it from the stream
		// once answered and never writes to it.
		return s.resources
	}
	out := make(map[string]string, len(prev)+len(s.resources))
	maps.Copy(out, prev)
	maps.Copy(out, s.resources)
	for _, name := range s.removed {
		delete(out, name)
	}
	return out
}

// reply is a client request, as far as ACK/NACK tracking is concerned.
type reply struct {
	node    string
	typeURL string
	nonce   string
	// version is the request's version_info (state of the world only).
	version     string
	errorDetail *rpcstatus.Status
	// metadata is the node's metadata (nodeMetadata), when the request
	// carries a node.
	metadata map[string]string
}

// tracker records per-node xDS state from the server callbacks. The
// Published and AckedResources maps it stores are never mutated in place,
// only replaced, so they may be shared with the server's published versions.
type tracker struct {
	log      logr.Logger
	onChange func(nodeID string)
	// logLimit bounds the connect, disconnect and NACK lines one node can cause.
	logLimit *logLimiter
	// observer is told of connections and NACKs (nopObserver by default).
	observer Observer

	// shared returns the name → version map of a published list that
	// nodes may share (Server.sharedVersions), or nil; an ACKed set equal to
	// it is kept as it, not as a copy per node. Nil in tests of the tracker.
	shared func(node, typeURL, version string) map[string]string

	mu      sync.Mutex
	proxies map[string]*ProxyStatus
	streams map[streamKey]*streamState
}

func newTracker(log logr.Logger, onChange func(string), limit *logLimiter) *tracker {
	return &tracker{
		log:      log,
		onChange: onChange,
		logLimit: limit,
		observer: nopObserver{},
		proxies:  map[string]*ProxyStatus{},
		streams:  map[streamKey]*streamState{},
	}
}

func (t *tracker) notify(node string) {
	if node != "" && t.onChange != nil {
		t.onChange(node)
	}
}

func (t *tracker) opened(key streamKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stream(key)
}

func (t *tracker) closed(key streamKey) {
	t.notify(t.recordClose(key))
}

func (t *tracker) recordClose(key streamKey) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.streams[key]
	delete(t.streams, key)
	if st == nil || st.node == "" {
		return ""
	}
	p := t.proxies[st.node]
	p.Streams--
	t.log.V(1).Info("xDS stream closed", "nodeID", st.node, "stream", key.id, "delta", key.delta)
	if p.Streams == 0 {
		t.observer.ProxyDisconnected(proxyKind(st.node))
		t.logProxy("proxy disconnected", p)
	}
	t.dropIfIdle(st.node)
	return st.node
}

func (t *tracker) requested(key streamKey, r reply) {
	t.notify(t.recordRequest(key, r))
}

func (t *tracker) recordRequest(key streamKey, r reply) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.stream(key)
	changed := t.identify(key, st, r.node, r.metadata)
	if st.node != "" && t.answer(st, r) {
		changed = true
	}
	if !changed {
		return ""
	}
	return st.node
}

func (t *tracker) responded(key streamKey, node, typeURL string, sent sentResponse) {
	t.notify(t.recordResponse(key, node, typeURL, sent))
}

func (t *tracker) recordResponse(key streamKey, node, typeURL string, sent sentResponse) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.stream(key)
	changed := t.identify(key, st, node, nil)
	if st.node == "" {
		return ""
	}
	st.sent[typeURL] = sent
	p := t.proxies[st.node]
	ts := p.Types[typeURL]
	ts.SentVersion, ts.SentNonce = sent.version, sent.nonce
	p.Types[typeURL] = ts
	if !changed {
		return ""
	}
	return st.node
}

// published records the versions now served to a node; nil means none.
func (t *tracker) published(node string, versions map[string]string) {
	t.mu.Lock()
	t.proxy(node).Published = versions
	t.dropIfIdle(node)
	t.mu.Unlock()
	t.notify(node)
}

func (t *tracker) statuses() []ProxyStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]ProxyStatus, 0, len(t.proxies))
	for _, p := range t.proxies {
		out = append(out, p.deepCopy())
	}
	slices.SortFunc(out, func(a, b ProxyStatus) int { return cmp.Compare(a.NodeID, b.NodeID) })
	return out
}

// count returns how many nodes satisfy pred, without copying statuses.
func (t *tracker) count(pred func(ProxyStatus) bool) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, p := range t.proxies {
		if pred(*p) {
			n++
		}
	}
	return n
}

func (t *tracker) ackStates() map[string]AckState {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]AckState, len(t.proxies))
	for id, p := range t.proxies {
		out[id] = p.ackState()
	}
	return out
}

func (t *tracker) connectedByKind() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]int{}
	for id, p := range t.proxies {
		if p.Streams > 0 {
			kind, _, _ := strings.Cut(id, "~")
			out[kind]++
		}
	}
	return out
}

func (t *tracker) status(node string) (ProxyStatus, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.proxies[node]
	if !ok {
		return ProxyStatus{}, false
	}
	return p.deepCopy(), true
}

func (t *tracker) openStreams(node string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.proxies[node]; p != nil {
		return p.Streams
	}
	return 0
}

// canonical returns the published shared map when acked equals it, else
// acked. Only delta ACKs are looked at: a state-of-the-world response's
// resources are that map already when it is shared (Server.publishedResources).
func (t *tracker) canonical(node, typeURL string, sent sentResponse, acked map[string]string) map[string]string {
	if t.shared == nil || !sent.delta {
		return acked
	}
	if all := t.shared(node, typeURL, sent.version); all != nil && maps.Equal(all, acked) {
		return all
	}
	return acked
}

// sharedAfter returns the published shared map when the node's set after
// ACKing the delta response sent (prev with sent's resources and without
// its removed ones) equals it, else nil; it allocates nothing.
func (t *tracker) sharedAfter(node, typeURL string, sent sentResponse, prev map[string]string) map[string]string {
	if t.shared == nil || !sent.delta {
		return nil
	}
	all := t.shared(node, typeURL, sent.version)
	if all == nil || !mergedEquals(all, prev, sent.resources, sent.removed) {
		return nil
	}
	return all
}

// mergedEquals reports whether prev, updated by resources and then
// without removed (sentResponse.ackedResources), equals all.
func mergedEquals(all, prev, resources map[string]string, removed []string) bool {
	gone := setOf(removed)
	for name, v := range resources {
		if w, ok := all[name]; !gone[name] && (!ok || w != v) {
			return false
		}
	}
	for name := range gone {
		if _, ok := all[name]; ok {
			return false
		}
	}
	if mergedSize(prev, resources, gone) != len(all) {
		return false
	}
	for name, v := range prev {
		if _, updated := resources[name]; updated || gone[name] {
			continue
		}
		if w, ok := all[name]; !ok || w != v {
			return false
		}
	}
	return true
}

// setOf is the names as a set, nil when there are none.
func setOf(names []string) map[string]bool {
	if len(names) == 0 {
		return nil
	}
	out := make(map[string]bool, len(names))
	for _, name := range names {
		out[name] = true
	}
	return out
}

// mergedSize is the size of prev updated by resources and without gone.
func mergedSize(prev, resources map[string]string, gone map[string]bool) int {
	size := len(prev)
	for name := range resources {
		if _, had := prev[name]; !had {
			size++
		}
	}
	for name := range gone {
		_, had := prev[name]
		_, added := resources[name]
		if had || added {
			size--
		}
	}
	return size
}

// stream returns the state of a stream, creating it if needed. t.mu is held.
func (t *tracker) stream(key streamKey) *streamState {
	st, ok := t.streams[key]
	if !ok {
		st = &streamState{sent: map[string]sentResponse{}}
		t.streams[key] = st
	}
	return st
}

// proxy returns the status of a node, creating it if needed. t.mu is held.
func (t *tracker) proxy(node string) *ProxyStatus {
	p, ok := t.proxies[node]
	if !ok {
		p = &ProxyStatus{NodeID: node, Types: map[string]TypeStatus{}}
		t.proxies[node] = p
	}
	return p
}

// dropIfIdle forgets a node with no stream and no published config. t.mu is held.
func (t *tracker) dropIfIdle(node string) {
	if p := t.proxies[node]; p != nil && p.Streams == 0 && len(p.Published) == 0 {
		delete(t.proxies, node)
	}
}

// identify binds a stream to its node on the first message naming one, and
// reports whether that changed the node's stream count. t.mu is held.
func (t *tracker) identify(key streamKey, st *streamState, node string, metadata map[string]string) bool {
	if st.node != "" || node == "" {
		return false
	}
	st.node = node
	p := t.proxy(node)
	p.Streams++
	p.Metadata = metadata
	t.log.V(1).Info("xDS stream opened", "nodeID", node, "stream", key.id, "delta", key.delta)
	if p.Streams == 1 {
		t.observer.ProxyConnected(proxyKind(node))
		t.logProxy("proxy connected", p)
	}
	return true
}

// answer applies an ACK or NACK and reports whether it was one. t.mu is held.
func (t *tracker) answer(st *streamState, r reply) bool {
	if r.nonce == "" {
		return false
	}
	sent, ok := st.sent[r.typeURL]
	latest := ok && sent.nonce == r.nonce
	p := t.proxies[st.node]
	ts := p.Types[r.typeURL]
	switch {
	case r.errorDetail != nil:
		ts = t.nack(st.node, ts, sent, latest, r)
	case latest:
		if all := t.sharedAfter(st.node, r.typeURL, sent, ts.AckedResources); all != nil {
			// The common case: the node now holds the published shared
			// list, found without building its set first.
			ts = ack(ts, sentResponse{nonce: sent.nonce, version: sent.version, resources: all}, r)
			break
		}
		ts = ack(ts, sent, r)
		ts.AckedResources = t.canonical(st.node, r.typeURL, sent, ts.AckedResources)
	default:
		return false
	}
	p.Types[r.typeURL] = ts
	if latest && sent.delta {
		// Answered: its resources are in AckedResources now (or were
		// refused); another answer to it changes nothing more.
		st.sent[r.typeURL] = sentResponse{nonce: sent.nonce, version: sent.version, delta: true}
	}
	return true
}

func (t *tracker) nack(node string, ts TypeStatus, sent sentResponse, latest bool, r reply) TypeStatus {
	n := &Nack{Nonce: truncateTo(r.nonce, maxNonce), Code: r.errorDetail.GetCode(),
		Message: truncateTo(r.errorDetail.GetMessage(), MaxNackMessage), At: time.Now()}
	if latest {
		n.Version = sent.version
		ts.Nacked = true
	}
	ts.LastNack = n
	t.observer.NACKed(shortType(r.typeURL))
	// The proxy writes the message: bounded and rate-limited per node.
	if ok, suppressed := t.logLimit.allowN("nack/" + node); ok {
		t.log.Info("proxy rejected config", append(proxyKeys(node, n.Version), "typeURL", truncate(r.typeURL),
			"nonce", truncate(n.Nonce), "message", truncate(n.Message), "suppressed", suppressed)...)
	}
	return ts
}

// settled tells where a node stands for the changes waiting for it
// (convergence): gone (no open stream; unknown nodes too), in sync, or
// still pending.
func (t *tracker) settled(node string) settlement {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch p := t.proxies[node]; {
	case p == nil || p.Streams == 0:
		return left
	case p.InSync():
		return inSync
	default:
		return pending
	}
}

// logProxy logs a node's connect or disconnect, rate-limited per node (a
// client chooses how often it connects). version is the sidecar's
// capstan.dev/version node metadata. t.mu is held.
func (t *tracker) logProxy(msg string, p *ProxyStatus) {
	if ok, suppressed := t.logLimit.allowN("conn/" + p.NodeID); ok {
		t.log.Info(msg, append(proxyKeys(p.NodeID, truncate(p.Metadata[nodeMetaVersion])), "suppressed", suppressed)...)
	}
}

// proxyKeys are the standard keys of a proxy's log line: proxy (the node
// ID), namespace and name (its pod's, empty when the node ID does not
// parse), version. Node IDs are bounded (truncate).
func proxyKeys(node, version string) []any {
	id, err := ParseNodeID(node)
	if err != nil {
		id = NodeID{}
	}
	return []any{"proxy", truncate(node), "namespace", id.Namespace, "name", id.Pod, "version", version}
}

func ack(ts TypeStatus, sent sentResponse, r reply) TypeStatus {
	ts.AckedVersion = cmp.Or(r.version, sent.version)
	ts.AckedNonce = r.nonce
	ts.AckedAt = time.Now()
	ts.AckedResources = sent.ackedResources(ts.AckedResources)
	ts.Nacked = false
	return ts
}
