package server

import (
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
	"weak"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
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
// marshalled and hashed once. Entries are found by the message's address and
// hold a weak pointer to it: an entry whose message was garbage collected
// (no snapshot and no generator memo references it any more) never matches
// a new message at the same address, and is dropped by a cleanup.
//
// A nil *internTable caches nothing.
type internTable struct {
	entries sync.Map // uintptr → *internEntry
	// types are the per-type versions and cache resources of lists of
	// messages that several snapshots hold (sharedTypes).
	types sharedTypes
	// hashed counts the resources validated and hashed (cache misses).
	hashed atomic.Uint64
}

// internEntry is the outcome of checking one message; proxies published
// concurrently that share a new message wait for one check (once).
type internEntry struct {
	// object is the weak.Pointer to the message.
	object  any
	typeURL string
	once    sync.Once
	name    string
	version string
	// wire is the resource as delta responses carry it, marshalled once
	// and shared by every response that sends it.
	wire *discoveryv3.Resource
	err  error
}

// checked is the outcome of checking one resource.
type checked struct {
	name    string
	version string
	wire    *discoveryv3.Resource
}

// version returns a resource's name, content hash and marshalled form,
// validating and marshalling it unless it was checked before, and the
// resource's entry (nil when the resource is not interned).
func (t *internTable) version(typeURL string, r types.Resource) (checked, *internEntry, error) {
	ref := internRef(r)
	if t == nil || ref == nil {
		c, err := t.check(typeURL, r)
		return c, nil, err
	}
	e := t.entry(typeURL, ref)
	if e == nil { // checked as another type: check it as this one
		c, err := t.check(typeURL, r)
		return c, nil, err
	}
	e.once.Do(func() {
		var c checked
		c, e.err = t.check(typeURL, r)
		e.name, e.version, e.wire = c.name, c.version, c.wire
	})
	return checked{name: e.name, version: e.version, wire: e.wire}, e, e.err
}

// entry returns the message's entry, adding one when there is none (or only
// one of a collected message at the same address); nil when the message has
// an entry for another type URL.
func (t *internTable) entry(typeURL string, ref messageRef) *internEntry {
	addr := ref.addr()
	v, ok := t.entries.Load(addr)
	for {
		if ok && ref.same(v.(*internEntry).object) {
			if e := v.(*internEntry); e.typeURL == typeURL {
				return e
			}
			return nil
		}
		e := &internEntry{object: ref.weak(), typeURL: typeURL}
		if !ok {
			if v, ok = t.entries.LoadOrStore(addr, e); !ok {
				t.watch(ref, e)
				return e
			}
			continue
		}
		if t.entries.CompareAndSwap(addr, v, e) {
			t.watch(ref, e)
			return e
		}
		v, ok = t.entries.Load(addr)
	}
}

// watch drops the entry once its message is garbage collected.
func (t *internTable) watch(ref messageRef, e *internEntry) {
	ref.onCollected(func(addr uintptr) { t.entries.CompareAndDelete(addr, e) })
}

// check validates, marshals and hashes a resource.
func (t *internTable) check(typeURL string, r types.Resource) (checked, error) {
	name, err := validateResource(typeURL, r)
	if err != nil {
		return checked{name: name}, err
	}
	wire, err := wireResource(typeURL, name, r)
	if err != nil {
		return checked{name: name}, err
	}
	if t != nil {
		t.hashed.Add(1)
	}
	return checked{name: name, version: wire.GetVersion(), wire: wire}, nil
}

// size is the number of resources the table holds.
func (t *internTable) size() int {
	n := 0
	t.entries.Range(func(any, any) bool { n++; return true })
	return n
}

// messageRef refers to a message of a type the generators produce; nil for
// any other type (those are validated on every call).
type messageRef interface {
	addr() uintptr
	// same reports whether a weak pointer points to the message.
	same(weak any) bool
	// weak makes a weak pointer to the message.
	weak() any
	// onCollected arranges for drop(addr) to run once the message is collected.
	onCollected(drop func(uintptr))
}

func internRef(r types.Resource) messageRef {
	switch m := r.(type) {
	case *clusterv3.Cluster:
		return refOf(m)
	case *endpointv3.ClusterLoadAssignment:
		return refOf(m)
	case *listenerv3.Listener:
		return refOf(m)
	case *routev3.RouteConfiguration:
		return refOf(m)
	case *tlsv3.Secret:
		return refOf(m)
	}
	return nil
}

func refOf[T any](m *T) messageRef {
	if m == nil {
		return nil
	}
	return ref[T]{m}
}

// ref is a messageRef; one pointer, so it is stored in an interface without allocating.
type ref[T any] struct{ m *T }

func (r ref[T]) addr() uintptr { return uintptr(unsafe.Pointer(r.m)) }

func (r ref[T]) same(w any) bool {
	wp, ok := w.(weak.Pointer[T])
	return ok && wp.Value() == r.m
}

func (r ref[T]) weak() any { return weak.Make(r.m) }

// onCollected's cleanup gets the address only, so it does not keep the message alive.
func (r ref[T]) onCollected(drop func(uintptr)) { runtime.AddCleanup(r.m, drop, r.addr()) }

// ResourcesHashed is the number of resources the server has validated,
// marshalled and hashed since it started: a resource shared by many proxies,
// or handed in again unchanged, counts once.
func (s *Server) ResourcesHashed() uint64 { return s.interned.hashed.Load() }
