package runner

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"slices"

	"github.com/go-logr/logr"

	"github.com/capstanmesh/capstan/xds/generate"
	"github.com/capstanmesh/capstan/xds/ir"
)

// proxyTable remembers, per proxy, the hash of the inputs its config was
// generated from and the per-object errors of that generation, so that only
// proxies whose inputs changed are generated again; and the parts of
// sidecars' config that are shared or reused (shared.go).
type proxyTable struct {
	keys  map[string]string
	errs  map[string]generate.Errors
	parts map[string]proxyPart
	memo  *memo
	// lastGenerated is how many proxies the last update generated config for.
	lastGenerated int
}

func newProxyTable() *proxyTable {
	return &proxyTable{keys: map[string]string{}, errs: map[string]generate.Errors{}, parts: map[string]proxyPart{}, memo: newMemo()}
}

// proxyJob is the config of one proxy to generate and publish, and its outcome.
type proxyJob struct {
	proxy *ir.Proxy
	key   string
	// part is the sidecar's own part (reused when its key did not change).
	part proxyPart
	// outbound is the outbound part of the sidecar's namespace and scope.
	outbound  *outboundPart
	published bool
	errs      generate.Errors
}

// update generates and publishes config for every proxy whose inputs changed,
// removes proxies that left, and returns the per-object errors of all proxies.
// Work runs on all cores; the table is written afterwards, in proxy order, so
// the result does not depend on scheduling. lastGenerated is then how many
// proxies it generated config for.
func (t *proxyTable) update(mesh *ir.Mesh, pub Publisher, log logr.Logger) generate.Errors {
	todo, seen := t.changed(mesh)
	keys := newPushKeys(mesh)
	t.memo.newCLAs = 0
	t.generateOutbound(mesh, todo, keys)
	t.generateProxyParts(mesh, todo)
	parallel(len(todo), func(i int) { todo[i].publish(mesh, pub, log) })
	for _, j := range todo {
		if j.part.key != "" {
			t.parts[j.proxy.ID] = j.part
		}
		if j.published {
			t.keys[j.proxy.ID], t.errs[j.proxy.ID] = j.key, j.errs
		}
	}
	t.removeGone(seen, pub)
	t.memo.prune(outboundKeys(mesh), keys)
	t.lastGenerated = len(todo)
	return t.allErrors()
}

// changed lists the proxies whose inputs changed, and every proxy served.
func (t *proxyTable) changed(mesh *ir.Mesh) ([]*proxyJob, map[string]bool) {
	shared := meshKey(mesh)
	seen := make(map[string]bool, len(mesh.Proxies))
	var todo []*proxyJob
	for _, p := range mesh.Proxies {
		if p.Kind != ir.ProxySidecar && p.Kind != ir.ProxyGRPC {
			continue
		}
		seen[p.ID] = true
		if key := shared + hashJSON(p); t.keys[p.ID] != key {
			todo = append(todo, &proxyJob{proxy: p, key: key})
		}
	}
	return todo, seen
}

// generateOutbound generates the outbound part once per outbound key
// (namespace and scope, outboundKey) of the sidecars to update, on all cores, then reuses unchanged messages (in
// namespace order, so the memo does not depend on scheduling).
func (t *proxyTable) generateOutbound(mesh *ir.Mesh, todo []*proxyJob, keys pushKeys) {
	byKey := map[string]*outboundPart{}
	var parts []*outboundPart
	for _, j := range todo {
		if j.proxy.Kind != ir.ProxySidecar {
			continue
		}
		key := outboundKey(j.proxy)
		if byKey[key] == nil {
			byKey[key] = &outboundPart{key: key, rep: j.proxy}
			parts = append(parts, byKey[key])
		}
		j.outbound = byKey[key]
	}
	parallel(len(parts), func(i int) { *parts[i] = *generateOutbound(mesh, parts[i].rep) })
	slices.SortFunc(parts, func(a, b *outboundPart) int { return cmp.Compare(a.key, b.key) })
	for _, part := range parts {
		if part.err == nil {
			t.memo.canonicalize(part, keys)
		}
	}
}

// generateProxyParts generates, on all cores, the own part of every sidecar
// to update whose own inputs changed.
func (t *proxyTable) generateProxyParts(mesh *ir.Mesh, todo []*proxyJob) {
	bare := bareMesh(mesh)
	bareKey := hashJSON(bare)
	parallel(len(todo), func(i int) {
		j := todo[i]
		if j.proxy.Kind != ir.ProxySidecar {
			return
		}
		key := bareKey + hashJSON(j.proxy)
		if prev, ok := t.parts[j.proxy.ID]; ok && prev.key == key {
			j.part = prev
			return
		}
		j.part = generateProxyPart(bare, j.proxy, key)
	})
}

// publish assembles (or, for proxyless gRPC, generates) and publishes the
// proxy's config; published is false when nothing was published.
func (j *proxyJob) publish(mesh *ir.Mesh, pub Publisher, log logr.Logger) {
	p := j.proxy
	res, errs, err := j.config(mesh)
	if err != nil {
		log.Error(err, "generation failed; the proxy keeps its config", "proxy", p.ID)
		return
	}
	if _, err := pub.SetProxyResources(p.ID, res.ByType()); err != nil {
		log.Error(err, "the server refused the generated config; the proxy keeps its config", "proxy", p.ID)
		return
	}
	j.published, j.errs = true, errs
}

func (j *proxyJob) config(mesh *ir.Mesh) (*generate.Resources, generate.Errors, error) {
	if j.proxy.Kind != ir.ProxySidecar {
		// The server checks grpc~ node IDs as proxyless gRPC clients (API listeners).
		return generateSplitFor(mesh, j.proxy)
	}
	if j.outbound.err != nil {
		return nil, nil, j.outbound.err
	}
	if j.part.err != nil {
		return nil, nil, j.part.err
	}
	errs := append(slices.Clip(j.outbound.errs), j.part.errs...)
	return assemble(j.part.res, j.outbound.res), errs, nil
}

// generateSplitFor is generate.For with its per-object errors apart.
func generateSplitFor(mesh *ir.Mesh, p *ir.Proxy) (*generate.Resources, generate.Errors, error) {
	res, err := generate.For(mesh, p)
	var perObject generate.Errors
	if err != nil && !errors.As(err, &perObject) {
		return nil, nil, err
	}
	return res, perObject, nil
}

func (t *proxyTable) removeGone(seen map[string]bool, pub Publisher) {
	for id := range t.keys {
		if !seen[id] {
			pub.RemoveProxy(id)
			delete(t.keys, id)
			delete(t.errs, id)
		}
	}
	for id := range t.parts {
		if !seen[id] {
			delete(t.parts, id)
		}
	}
}

func (t *proxyTable) allErrors() generate.Errors {
	var all generate.Errors
	for _, id := range slices.Sorted(maps.Keys(t.errs)) {
		all = append(all, t.errs[id]...)
	}
	return all
}

// outboundKeys are the outbound keys of the mesh's sidecars.
func outboundKeys(mesh *ir.Mesh) map[string]bool {
	out := map[string]bool{}
	for _, p := range mesh.Proxies {
		if p.Kind == ir.ProxySidecar {
			out[outboundKey(p)] = true
		}
	}
	return out
}

// outboundKey is what a sidecar's outbound part depends on besides the mesh:
// its namespace and its scope. Sidecars with equal keys share the part, so
// pods of a namespace with the same declared dependencies share it.
func outboundKey(p *ir.Proxy) string {
	if p.Scope == nil {
		return p.Namespace
	}
	return p.Namespace + "|" + hashJSON(p.Scope)
}

// meshKey hashes everything in the mesh that every proxy's config depends on.
func meshKey(mesh *ir.Mesh) string {
	shared := *mesh
	shared.Proxies = nil
	return hashJSON(&shared)
}

func hashJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// The model is plain data; a marshal failure means a bug. Never match a previous key.
		return "unhashable:" + err.Error()
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}
