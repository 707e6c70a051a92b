package server

import (
	"encoding/binary"
	"sync"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
)

// sharedTypes holds, for each list of messages that published configs hold
// for one type, its versions: proxies that share config (the runner gives
// them the same messages) then share the name → resource map too, instead
// of each building and hashing its own.
// A list is known by the type URL and its messages' addresses in order: the
// shared list holds its messages (typeVersions.items), so while it is in
// the table no other message can have one of those addresses, and a hit
// needs neither a look-up nor a check of any message.
//
// Entries are reference-counted by the configurations that hold them (the
// current and previous configuration of each node): publish acquires,
// replacing or removing a configuration releases, and the last release drops
// the list, and with it the table's references to its messages.
type sharedTypes struct {
	mu    sync.Mutex
	lists map[string]*sharedType
}

type sharedType struct {
	key  string
	tv   typeVersions
	refs int
	// versions is tv's name → version map, made once when first asked
	// for: the ACKed resources of every node that runs the list share it.
	versions func() map[string]string
	// namesKey is namesHash of tv's resources, made once when first asked for.
	namesKey func() string

	// changed memoises changedNames from other lists, by their version:
	// the nodes that share this list and the one before ask the same.
	changedMu sync.Mutex
	changed   map[string][]string
}

// maxChangedMemo bounds a shared list's changedNames memo.
const maxChangedMemo = 8

// changedNames lists the names whose version differs between two lists of
// one type, removed names included; memoised on to's shared list.
func changedNames(from, to typeVersions) []string {
	st := to.shared
	if st == nil {
		return diffNames(from, to)
	}
	st.changedMu.Lock()
	defer st.changedMu.Unlock()
	if names, ok := st.changed[from.version]; ok {
		return names
	}
	names := diffNames(from, to)
	if st.changed == nil || len(st.changed) >= maxChangedMemo {
		st.changed = map[string][]string{}
	}
	st.changed[from.version] = names
	return names
}

func diffNames(from, to typeVersions) []string {
	var names []string
	for name, r := range to.resources {
		if old, ok := from.resources[name]; !ok || old.GetVersion() != r.GetVersion() {
			names = append(names, name)
		}
	}
	for name := range from.resources {
		if _, ok := to.resources[name]; !ok {
			names = append(names, name)
		}
	}
	return names
}

func newSharedType(key string, tv typeVersions) *sharedType {
	st := &sharedType{key: key, tv: tv}
	st.tv.shared = st
	st.versions = sync.OnceValue(st.tv.versionMap)
	st.namesKey = sync.OnceValue(func() string { return namesHash(st.tv.resources) })
	return st
}

// sharedKey is the type URL and the addresses of the list's messages; false
// when a message is of a type the intern table does not know.
func sharedKey(typeURL string, items []types.Resource) (string, bool) {
	key := make([]byte, 0, len(typeURL)+1+8*len(items))
	key = append(append(key, typeURL...), 0)
	for _, r := range items {
		ref := internRef(r)
		if ref == nil {
			return "", false
		}
		key = binary.LittleEndian.AppendUint64(key, uint64(ref.addr()))
	}
	return string(key), true
}

// sharedType returns the published list with that key, or nil.
func (t *internTable) sharedType(key string, shareable bool) *sharedType {
	if t == nil || !shareable {
		return nil
	}
	t.types.mu.Lock()
	defer t.types.mu.Unlock()
	return t.types.lists[key]
}

// acquire counts a configuration that holds these versions.
func (s *sharedTypes) acquire(c configVersions) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lists == nil {
		s.lists = map[string]*sharedType{}
	}
	for _, tv := range c {
		st := tv.shared
		if st == nil {
			continue
		}
		switch s.lists[st.key] {
		case nil:
			s.lists[st.key] = st
			st.refs = 1
		case st:
			st.refs++
		}
		// Another list with the same key is published already: this one
		// stays out of the table and is never counted.
	}
}

// release uncounts a configuration acquired before.
func (s *sharedTypes) release(c configVersions) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, tv := range c {
		st := tv.shared
		if st == nil || s.lists[st.key] != st {
			continue
		}
		if st.refs--; st.refs == 0 {
			delete(s.lists, st.key)
		}
	}
}

// len is the number of lists held.
func (s *sharedTypes) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lists)
}
