package server

import (
	"runtime"
	"sync"
	"sync/atomic"
	"weak"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// internTable remembers, per resource message (by pointer), that it passed
// validation and what its name and content hash are. Resources must not be
// modified once published (SetProxyResources says so), so a message that
// many proxies share, or that a later push hands in again, is validated,
// marshalled and hashed once. Entries are keyed by weak pointers and dropped
// when the message is garbage collected, that is when no snapshot (and no
// generator memo) references it any more; a new message at a reused address
// gets another weak pointer, never a stale entry.
//
// A nil *internTable caches nothing.
type internTable struct {
	entries sync.Map // weak.Pointer[T] → internEntry
	// hashed counts the resources validated and hashed (cache misses).
	hashed atomic.Uint64
}

type internEntry struct {
	typeURL, name, version string
}

// version returns a resource's name and content hash, validating and hashing
// it unless it passed before.
func (t *internTable) version(typeURL string, r types.Resource) (name, version string, err error) {
	key, watch := internKey(r)
	if t != nil && key != nil {
		if e, ok := t.entries.Load(key); ok && e.(internEntry).typeURL == typeURL {
			return e.(internEntry).name, e.(internEntry).version, nil
		}
	}
	if name, err = validateResource(typeURL, r); err != nil {
		return name, "", err
	}
	if version, err = resourceVersion(r); err != nil {
		return name, "", err
	}
	if t != nil {
		t.hashed.Add(1)
		if key != nil {
			t.store(key, watch, internEntry{typeURL: typeURL, name: name, version: version})
		}
	}
	return name, version, nil
}

func (t *internTable) store(key any, watch func(drop func(any)), e internEntry) {
	if _, loaded := t.entries.LoadOrStore(key, e); !loaded {
		watch(func(k any) { t.entries.Delete(k) })
	}
}

// size is the number of resources the table holds.
func (t *internTable) size() int {
	n := 0
	t.entries.Range(func(any, any) bool { n++; return true })
	return n
}

// internKey is the weak pointer to a resource of a type the generators
// produce, and a function that arranges for drop(key) to run once the
// resource is garbage collected; nil for other types (those are validated on
// every call).
func internKey(r types.Resource) (any, func(drop func(any))) {
	switch m := r.(type) {
	case *clusterv3.Cluster:
		return weakKey(m)
	case *endpointv3.ClusterLoadAssignment:
		return weakKey(m)
	case *listenerv3.Listener:
		return weakKey(m)
	case *routev3.RouteConfiguration:
		return weakKey(m)
	case *tlsv3.Secret:
		return weakKey(m)
	}
	return nil, nil
}

func weakKey[T any](m *T) (any, func(drop func(any))) {
	if m == nil {
		return nil, nil
	}
	key := weak.Make(m)
	// The cleanup's argument is the weak key only, so it does not keep m alive.
	return key, func(drop func(any)) { runtime.AddCleanup(m, drop, any(key)) }
}

// ResourcesHashed is the number of resources the server has validated,
// marshalled and hashed since it started: a resource shared by many proxies,
// or handed in again unchanged, counts once.
func (s *Server) ResourcesHashed() uint64 { return s.interned.hashed.Load() }
