package server

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
)

// typeVersions are the versions of one resource type in one proxy's snapshot.
type typeVersions struct {
	// version is derived from resources: equal sets give equal versions.
	version string
	// resources maps resource name to its content hash. Never mutated after
	// creation, so it can be shared with the cache and the status tracker.
	resources map[string]string
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

// newTypeVersions hashes every resource and derives the type version.
func newTypeVersions(items []types.Resource) (typeVersions, error) {
	resources := make(map[string]string, len(items))
	for _, r := range items {
		v, err := resourceVersion(r)
		if err != nil {
			return typeVersions{}, err
		}
		resources[cachev3.GetResourceName(r)] = v
	}
	return typeVersions{version: deriveTypeVersion(resources), resources: resources}, nil
}

// deriveTypeVersion hashes the sorted (name, version) pairs, each
// length-prefixed so that no two different sets hash the same input.
func deriveTypeVersion(resources map[string]string) string {
	h := sha256.New()
	var buf []byte
	for _, name := range slices.Sorted(maps.Keys(resources)) {
		buf = appendLengthPrefixed(buf[:0], name)
		buf = appendLengthPrefixed(buf, resources[name])
		h.Write(buf)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func appendLengthPrefixed(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// newConfigVersions computes versions for every type the cache knows; a type
// without resources gets the version of the empty set, so that a client
// asking for it is answered (an empty answer) rather than kept waiting.
func newConfigVersions(res map[string][]types.Resource) (configVersions, error) {
	out := make(configVersions, int(types.UnknownType))
	for _, typeURL := range knownTypeURLs() {
		tv, err := newTypeVersions(res[typeURL])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", typeURL, err)
		}
		out[typeURL] = tv
	}
	return out, nil
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
