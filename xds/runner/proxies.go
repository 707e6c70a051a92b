package runner

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"

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
func (t *proxyTable) update(mesh *ir.Mesh, pub Publisher, log logr.Logger) generate.Errors {
	shared := meshKey(mesh)
	seen := make(map[string]bool, len(mesh.Proxies))
	for _, p := range mesh.Proxies {
		if p.Kind != ir.ProxySidecar && p.Kind != ir.ProxyGRPC {
			continue
		}
		seen[p.ID] = true
		key := shared + hashJSON(p)
		if t.keys[p.ID] == key {
			continue
		}
		if t.generate(mesh, p, pub, log) {
			t.keys[p.ID] = key
		}
	}
	t.removeGone(seen, pub)
	return t.allErrors()
}

// generate builds and publishes one proxy's config; false when nothing was published.
func (t *proxyTable) generate(mesh *ir.Mesh, p *ir.Proxy, pub Publisher, log logr.Logger) bool {
	// For picks the generator of the proxy's kind; the server checks grpc~
	// node IDs as proxyless gRPC clients (API listeners).
	res, err := generate.For(mesh, p)
	var perObject generate.Errors
	if err != nil && !errors.As(err, &perObject) {
		log.Error(err, "generation failed; the proxy keeps its config", "proxy", p.ID)
		return false
	}
	if _, err := pub.SetProxyResources(p.ID, res.ByType()); err != nil {
		log.Error(err, "the server refused the generated config; the proxy keeps its config", "proxy", p.ID)
		return false
	}
	t.errs[p.ID] = perObject
	return true
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
	for _, errs := range t.errs {
		all = append(all, errs...)
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
