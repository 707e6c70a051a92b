package runner

import (
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
// proxies whose inputs changed are generated again.
type proxyTable struct {
	keys map[string]string
	errs map[string]generate.Errors
}

func newProxyTable() *proxyTable {
	return &proxyTable{keys: map[string]string{}, errs: map[string]generate.Errors{}}
}

// update generates and publishes config for every proxy whose inputs changed,
// removes proxies that left, and returns the per-object errors of all proxies.
// Proxies are generated and published on all cores; the table is written
// afterwards, in proxy order, so the result does not depend on scheduling.
func (t *proxyTable) update(mesh *ir.Mesh, pub Publisher, log logr.Logger) generate.Errors {
	shared := meshKey(mesh)
	seen := make(map[string]bool, len(mesh.Proxies))
	var todo []proxyJob
	for _, p := range mesh.Proxies {
		if p.Kind != ir.ProxySidecar && p.Kind != ir.ProxyGRPC {
			continue
		}
		seen[p.ID] = true
		if key := shared + hashJSON(p); t.keys[p.ID] != key {
			todo = append(todo, proxyJob{proxy: p, key: key})
		}
	}
	parallel(len(todo), func(i int) { todo[i].run(mesh, pub, log) })
	for _, j := range todo {
		if j.published {
			t.keys[j.proxy.ID], t.errs[j.proxy.ID] = j.key, j.errs
		}
	}
	t.removeGone(seen, pub)
	return t.allErrors()
}

// proxyJob is the generation of one proxy's config and its outcome.
type proxyJob struct {
	proxy     *ir.Proxy
	key       string
	published bool
	errs      generate.Errors
}

// run builds and publishes the proxy's config; published is false when
// nothing was published.
func (j *proxyJob) run(mesh *ir.Mesh, pub Publisher, log logr.Logger) {
	p := j.proxy
	// For picks the generator of the proxy's kind; the server checks grpc~
	// node IDs as proxyless gRPC clients (API listeners).
	res, err := generate.For(mesh, p)
	var perObject generate.Errors
	if err != nil && !errors.As(err, &perObject) {
		log.Error(err, "generation failed; the proxy keeps its config", "proxy", p.ID)
		return
	}
	if _, err := pub.SetProxyResources(p.ID, res.ByType()); err != nil {
		log.Error(err, "the server refused the generated config; the proxy keeps its config", "proxy", p.ID)
		return
	}
	j.published, j.errs = true, perObject
}

func (t *proxyTable) removeGone(seen map[string]bool, pub Publisher) {
	for id := range t.keys {
		if !seen[id] {
			pub.RemoveProxy(id)
			delete(t.keys, id)
			delete(t.errs, id)
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
