package runner

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/capstanmesh/capstan/xds/generate"
	"github.com/capstanmesh/capstan/xds/ir"
)

// Sidecars whose own part has the same content (the same inbound ports,
// probes and mesh-wide settings: most pods of a mesh) share one
// *generate.Resources for it, and the sidecars that share an own part and
// an outbound part share one assembly: the very same lists. The server then
// sees one list per group and type, validated, mapped and versioned once
// for the group (its sharedTypes), instead of a cluster and a listener list
// of each sidecar's own.

// contentKey hashes the deterministic marshalling of every resource, by
// type; "" when one cannot be marshalled (the part is then not shared).
func contentKey(res *generate.Resources) string {
	h := sha256.New()
	opts := proto.MarshalOptions{Deterministic: true}
	byType := res.ByType()
	for _, typeURL := range slices.Sorted(maps.Keys(byType)) {
		h.Write([]byte(typeURL))
		for _, r := range byType[typeURL] {
			b, err := opts.Marshal(r)
			if err != nil {
				return ""
			}
			h.Write(appendLen(nil, len(b)))
			h.Write(b)
		}
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

func appendLen(buf []byte, n int) []byte {
	for ; n >= 0x80; n >>= 7 {
		buf = append(buf, byte(n)|0x80)
	}
	return append(buf, byte(n))
}

// internOwnParts makes the fresh own parts of sidecars with the same
// content one, in proxy order (the first one's messages), and the earlier
// pushes' ones when they have that content.
func (t *proxyTable) internOwnParts(todo []*proxyJob, fresh []bool) {
	owned := map[string]*generate.Resources{}
	for _, p := range t.parts {
		if p.content != "" {
			owned[p.content] = p.res
		}
	}
	for i, j := range todo {
		if !fresh[i] || j.part.content == "" {
			continue
		}
		if res, ok := owned[j.part.content]; ok {
			j.part.res = res
			continue
		}
		owned[j.part.content] = j.part.res
	}
}

// assemblyKey is what an assembly depends on.
type assemblyKey struct {
	own      *generate.Resources
	outbound *outboundPart
}

// assembleGroups assembles the config of each group of sidecars with the
// same own and outbound parts once, in proxy order.
func assembleGroups(todo []*proxyJob) {
	groups := map[assemblyKey]*assembly{}
	for _, j := range todo {
		if j.proxy.Kind != ir.ProxySidecar || j.outbound == nil || j.outbound.err != nil || j.part.err != nil {
			continue
		}
		k := assemblyKey{own: j.part.res, outbound: j.outbound}
		if a := groups[k]; a != nil {
			j.res = a
			continue
		}
		j.res = assembleFrom(j.prev, j.part.res, j.outbound)
		groups[k] = j.res
	}
}
