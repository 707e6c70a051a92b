package runner

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"slices"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/go-logr/logr"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"

	"github.com/capstanmesh/capstan/xds/generate"
	"github.com/capstanmesh/capstan/xds/ir"
)

// proxyTable remembers, per proxy, the hash of the proxy its config was
// generated for and the per-object errors of that generation, and the mesh
// it last published, so that only what changed is generated again
// (incremental.go); and the parts of sidecars' config that are shared or
// reused (shared.go).
type proxyTable struct {
	keys  map[string]string
	errs  map[string]generate.Errors
	parts map[string]proxyPart
	memo  *memo
	// mesh is the mesh published last: ir.Changes are relative to it.
	mesh *ir.Mesh
	// outbound are the outbound parts published last, by outbound key.
	outbound map[string]*outboundPart
	// assembled is what each sidecar was published, and from which parts.
	assembled map[string]*assembly
	// lastGenerated is how many proxies the last update generated config for.
	lastGenerated int
	// lastParts counts the outbound parts of the last update by how they
	// were brought up to date.
	lastParts partCounts
	// lastChanged are the proxies whose served config the last update
	// changed, in proxy order.
	lastChanged []string
}

// partCounts counts outbound parts generated whole, patched, and kept.
type partCounts struct{ whole, patched, kept int }

func newProxyTable() *proxyTable {
	return &proxyTable{
		keys: map[string]string{}, errs: map[string]generate.Errors{}, parts: map[string]proxyPart{}, memo: newMemo(),
		outbound: map[string]*outboundPart{}, assembled: map[string]*assembly{},
	}
}

// proxyJob is the config of one proxy to generate and publish, and its outcome.
type proxyJob struct {
	proxy *ir.Proxy
	key   string
	// part is the sidecar's own part (reused when its key did not change).
	part proxyPart
	// outbound is the outbound part of the sidecar's namespace and scope.
	outbound *outboundPart
	// prev is what the sidecar was published last; res what it is now.
	prev, res *assembly
	published bool
	// changed: publishing changed the config the server serves the proxy.
	changed bool
	errs    generate.Errors
}

// update is apply with the changes since the mesh published last.
func (t *proxyTable) update(mesh *ir.Mesh, pub Publisher, log logr.Logger) generate.Errors {
	return t.apply(mesh, ir.Diff(t.mesh, mesh), pub, log)
}

// apply generates and publishes config for every proxy whose inputs
// changed, given what changed in the mesh since the one published last,
// removes proxies that left, and returns the per-object errors of all
// proxies. Work runs on all cores; the table is written afterwards, in proxy
// order, so the result does not depend on scheduling. lastGenerated is then
// how many proxies it published config for.
func (t *proxyTable) apply(mesh *ir.Mesh, changes ir.Changes, pub Publisher, log logr.Logger) generate.Errors {
	todo, seen := t.changed(mesh, &changes)
	t.memo.newCLAs = 0
	t.generateOutbound(mesh, todo, &changes)
	t.internOwnParts(todo, t.generateProxyParts(mesh, todo))
	todo = t.withoutUnchanged(todo)
	assembleGroups(todo)
	parallel(len(todo), func(i int) { todo[i].publish(mesh, pub, log) })
	t.lastChanged = nil
	for _, j := range todo {
		if j.changed {
			t.lastChanged = append(t.lastChanged, j.proxy.ID)
		}
		if j.part.key != "" {
			t.parts[j.proxy.ID] = j.part
		}
		if !j.published {
			delete(t.keys, j.proxy.ID) // retried on the next push
			delete(t.assembled, j.proxy.ID)
			continue
		}
		t.keys[j.proxy.ID], t.errs[j.proxy.ID] = j.key, j.errs
		if j.res != nil {
			t.assembled[j.proxy.ID] = j.res
		}
	}
	t.removeGone(seen, pub)
	t.mesh = mesh
	t.lastGenerated = len(todo)
	return t.allErrors()
}

// changed lists the proxies to bring up to date (all of them when the mesh
// changed, else those that changed), and every proxy served.
func (t *proxyTable) changed(mesh *ir.Mesh, changes *ir.Changes) ([]*proxyJob, map[string]bool) {
	seen := make(map[string]bool, len(mesh.Proxies))
	var todo []*proxyJob
	for _, p := range mesh.Proxies {
		if p.Kind != ir.ProxySidecar && p.Kind != ir.ProxyGRPC {
			continue
		}
		seen[p.ID] = true
		if key := hashJSON(p); t.keys[p.ID] != key || !changes.Empty() {
			todo = append(todo, &proxyJob{proxy: p, key: key, prev: t.assembled[p.ID]})
		}
	}
	return todo, seen
}

// withoutUnchanged drops the sidecars whose config is what was published:
// same proxy, same own part, same outbound part.
func (t *proxyTable) withoutUnchanged(todo []*proxyJob) []*proxyJob {
	out := todo[:0]
	for _, j := range todo {
		if j.proxy.Kind == ir.ProxySidecar && j.prev != nil && t.keys[j.proxy.ID] == j.key &&
			j.prev.outbound == j.outbound && j.prev.own == j.part.res && j.outbound.err == nil && j.part.err == nil {
			continue
		}
		out = append(out, j)
	}
	return out
}

// generateOutbound brings the outbound part of every outbound key
// (namespace and scope, outboundKey) of the sidecars to update up to date,
// on all cores: patched, kept or generated whole (incremental.go); then,
// in key order so that nothing depends on scheduling, reuses the messages
// of earlier pushes (memo) in whole parts and applies the patches.
func (t *proxyTable) generateOutbound(mesh *ir.Mesh, todo []*proxyJob, changes *ir.Changes) {
	byKey := map[string]*outboundJob{}
	var jobs []*outboundJob
	for _, j := range todo {
		if j.proxy.Kind != ir.ProxySidecar {
			continue
		}
		key := outboundKey(j.proxy)
		if byKey[key] == nil {
			byKey[key] = &outboundJob{key: key, rep: j.proxy, prev: t.outbound[key]}
			jobs = append(jobs, byKey[key])
		}
	}
	parallel(len(jobs), func(i int) { jobs[i].run(mesh, changes) })
	slices.SortFunc(jobs, func(a, b *outboundJob) int { return cmp.Compare(a.key, b.key) })
	t.finishOutbound(mesh, jobs)
	for _, j := range todo {
		if job := byKey[outboundKey(j.proxy)]; job != nil && j.proxy.Kind == ir.ProxySidecar {
			j.outbound = job.part
		}
	}
}

// finishOutbound canonicalizes whole parts, applies patches, and keeps the
// parts of the mesh's outbound keys.
func (t *proxyTable) finishOutbound(mesh *ir.Mesh, jobs []*outboundJob) {
	var keys *pushKeys
	shared := map[string]*endpointv3.ClusterLoadAssignment{}
	t.lastParts = partCounts{}
	for _, job := range jobs {
		switch {
		case job.full:
			t.lastParts.whole++
			if job.part.err != nil {
				break
			}
			if keys == nil {
				k := newPushKeys(mesh)
				keys = &k
			}
			t.memo.canonicalize(job.part, *keys)
		case job.delta != nil:
			t.lastParts.patched++
			t.memo.newCLAs += job.patch(shared)
		default:
			t.lastParts.kept++
		}
		t.outbound[job.key] = job.part
	}
	live := outboundKeys(mesh)
	for k := range t.outbound {
		if !live[k] {
			delete(t.outbound, k)
		}
	}
	t.memo.pruneGroups(live)
	if keys != nil {
		t.memo.pruneAssignments(*keys)
	}
}

// generateProxyParts generates, on all cores, the own part of every sidecar
// to update whose own inputs changed, and says which parts are new.
func (t *proxyTable) generateProxyParts(mesh *ir.Mesh, todo []*proxyJob) (fresh []bool) {
	bare := bareMesh(mesh)
	bareKey := hashJSON(bare)
	fresh = make([]bool, len(todo))
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
		j.part, fresh[i] = generateProxyPart(bare, j.proxy, key), true
	})
	return fresh
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
	changed, err := pub.SetProxyResources(p.ID, res)
	if err != nil {
		log.Error(err, "the server refused the generated config; the proxy keeps its config", "proxy", p.ID)
		return
	}
	j.published, j.changed, j.errs = true, changed, errs
}

// config is the proxy's resources by type URL, and its per-object errors.
func (j *proxyJob) config(mesh *ir.Mesh) (map[string][]types.Resource, generate.Errors, error) {
	if j.proxy.Kind != ir.ProxySidecar {
		// The server checks grpc~ node IDs as proxyless gRPC clients (API listeners).
		res, errs, err := generateSplitFor(mesh, j.proxy)
		if err != nil {
			return nil, nil, err
		}
		return res.ByType(), errs, nil
	}
	if j.outbound.err != nil {
		return nil, nil, j.outbound.err
	}
	if j.part.err != nil {
		return nil, nil, j.part.err
	}
	errs := append(slices.Clip(j.outbound.errs), j.part.errs...)
	if j.res == nil {
		j.res = assembleFrom(j.prev, j.part.res, j.outbound)
	}
	return j.res.byType, errs, nil
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
	for id := range t.assembled {
		if !seen[id] {
			delete(t.assembled, id)
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

func hashJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// The model is plain data; a marshal failure means a bug. Never match a previous key.
		return "unhashable:" + err.Error()
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}
