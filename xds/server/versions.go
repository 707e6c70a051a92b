package server

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// typeVersions are the versions of one resource type in one proxy's snapshot.
type typeVersions struct {
	// version is derived from resources: equal sets give equal versions.
	version string
	// resources maps resource name to the resource as delta responses
	// carry it, marshalled once (internEntry.wire), with its content hash as
	// version. Never mutated after creation, so it can be shared with the
	// caches.
	resources map[string]*discoveryv3.Resource
	// items is the list the versions were made from (the caller's slice,
	// not modified afterwards): a later list of the same messages gets
	// these versions without a look-up (configVersions).
	items []types.Resource
	// shared is set when other snapshots may hold the same list (sharedTypes).
	shared *sharedType
}

// configVersions maps type URL to the versions of that type, for every type
// the snapshot cache knows.
type configVersions map[string]typeVersions

// resourceVersion is the content hash of a resource: SHA-256 of its
// deterministic proto marshalling. It is the same hash go-control-plane puts
// in delta responses, so versions a client reports back match ours.
func resourceVersion(r types.Resource) (string, error) {
	b, err := cachev3.MarshalResource(r)
	if err != nil {
		return "", fmt.Errorf("marshalling %q: %w", cachev3.GetResourceName(r), err)
	}
	return cachev3.HashResource(b), nil
}

// wireResource marshals a resource as delta responses carry it, with its
// content hash (resourceVersion) as version.
func wireResource(typeURL, name string, r types.Resource) (*discoveryv3.Resource, error) {
	b, err := cachev3.MarshalResource(r)
	if err != nil {
		return nil, fmt.Errorf("marshalling %q: %w", name, err)
	}
	return &discoveryv3.Resource{
		Name:     name,
		Version:  cachev3.HashResource(b),
		Resource: &anypb.Any{TypeUrl: typeURL, Value: b},
	}, nil
}

// typeVersions validates and hashes the resources of one type (see
// validateType) and derives the type version; resources the table knows are
// neither validated nor hashed again, and a list of the same messages as
// another snapshot's gets that snapshot's versions (sharedTypes).
func (t *internTable) typeVersions(typeURL string, items []types.Resource) (typeVersions, error) {
	if cachev3.GetResponseType(typeURL) == types.UnknownType {
		return typeVersions{}, fmt.Errorf("unknown resource type %q", typeURL)
	}
	key, shareable := sharedKey(typeURL, items)
	if st := t.sharedType(key, shareable); st != nil {
		return st.tv, nil
	}
	tv, err := t.newTypeVersions(typeURL, items)
	if err == nil && shareable && t != nil {
		tv.shared = newSharedType(key, tv)
	}
	return tv, err
}

// newTypeVersions maps names to versions (all resources checked already),
// refusing repeated names, and derives the type version.
func (t *internTable) newTypeVersions(typeURL string, items []types.Resource) (typeVersions, error) {
	resources := make(map[string]*discoveryv3.Resource, len(items))
	var errs []error
	for i, r := range items {
		c, _, err := t.version(typeURL, r)
		if _, dup := resources[c.name]; err == nil && dup {
			err = errors.New("duplicate resource name")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s #%d %q: %w", typeURL, i, c.name, err))
			continue
		}
		resources[c.name] = c.wire
	}
	if err := errors.Join(errs...); err != nil {
		return typeVersions{}, err
	}
	return typeVersions{version: hashVersions(resources, (*discoveryv3.Resource).GetVersion), resources: resources, items: items}, nil
}

// deriveTypeVersion hashes the sorted (name, version) pairs, each
// length-prefixed so that no two different sets hash the same input.
func deriveTypeVersion(resources map[string]string) string {
	return hashVersions(resources, func(v string) string { return v })
}

// hashVersions is deriveTypeVersion of the names and versions of m.
func hashVersions[V any](m map[string]V, version func(V) string) string {
	h := sha256.New()
	var buf []byte
	for _, name := range slices.Sorted(maps.Keys(m)) {
		buf = appendLengthPrefixed(buf[:0], name)
		buf = appendLengthPrefixed(buf, version(m[name]))
		h.Write(buf)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// versionMap returns resource name → version, a new map.
func (tv typeVersions) versionMap() map[string]string {
	out := make(map[string]string, len(tv.resources))
	for name, r := range tv.resources {
		out[name] = r.GetVersion()
	}
	return out
}

func appendLengthPrefixed(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// newConfigVersions is internTable.configVersions without a table.
func newConfigVersions(res map[string][]types.Resource) (configVersions, error) {
	return (*internTable)(nil).configVersions(res, nil)
}

// configVersions validates every resource (all failures joined, sorted by
// type URL) and computes versions for every type the cache knows; a type
// without resources gets the version of the empty set, so that a client
// asking for it is answered (an empty answer) rather than kept waiting. A
// type whose list holds the same messages, in the same order, as prev's
// (the node's current config) is prev's, at the cost of comparing pointers:
// a push that changed one load assignment looks up only the changed list.
func (t *internTable) configVersions(res map[string][]types.Resource, prev configVersions) (configVersions, error) {
	out := make(configVersions, int(types.UnknownType))
	var errs []error
	for _, typeURL := range slices.Sorted(maps.Keys(res)) {
		if tv, ok := prev[typeURL]; ok && sameItems(tv.items, res[typeURL]) {
			out[typeURL] = tv
			continue
		}
		tv, err := t.typeVersions(typeURL, res[typeURL])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[typeURL] = tv
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, typeURL := range knownTypeURLs() {
		if _, ok := out[typeURL]; !ok {
			out[typeURL] = typeVersions{version: deriveTypeVersion(nil), resources: map[string]*discoveryv3.Resource{}}
		}
	}
	return out, nil
}

// sameItems reports whether two lists hold the same messages in the same order.
func sameItems(a, b []types.Resource) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !sameMessage(a[i], b[i]) {
			return false
		}
	}
	return true
}

// sameMessage reports whether two resources are the same message; false for
// resources of types the intern table does not know (their values may not
// be comparable).
func sameMessage(a, b types.Resource) bool {
	ra, rb := internRef(a), internRef(b)
	return ra != nil && rb != nil && ra == rb
}

// typeVersionMap returns type URL → type version.
func (c configVersions) typeVersionMap() map[string]string {
	out := make(map[string]string, len(c))
	for typeURL, tv := range c {
		out[typeURL] = tv.version
	}
	return out
}

// equal reports whether two configurations have the same type versions.
func (c configVersions) equal(o configVersions) bool {
	return maps.EqualFunc(c, o, func(a, b typeVersions) bool { return a.version == b.version })
}

// knownTypeURLs lists the type URLs the snapshot cache can hold.
func knownTypeURLs() []string {
	out := make([]string, 0, int(types.UnknownType))
	for t := types.ResponseType(0); t < types.UnknownType; t++ {
		typeURL, err := cachev3.GetResponseTypeURL(t)
		if err == nil {
			out = append(out, typeURL)
		}
	}
	return out
}
