package server

import (
	"encoding/binary"
	"sync"
	"unsafe"
)

// sharedTypes holds, for each list of messages that published configs hold
// for one type, its versions: proxies that share config (the runner gives
// them the same messages) then share the name → resource map too, instead
// of each building and hashing its own.
// A list is known by its interned entries in order; an entry lives while
// any list or message refers to it, so its address identifies it.
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
	key string
	tv  typeVersions
	// entries keep the interned entries, and so the key's addresses, alive.
	entries []*internEntry
	refs    int
}

// sharedKey is the type URL and the addresses of the list's entries; false
// when a message is not interned.
func sharedKey(typeURL string, entries []*internEntry) (string, bool) {
	key := make([]byte, 0, len(typeURL)+1+8*len(entries))
	key = append(append(key, typeURL...), 0)
	for _, e := range entries {
		if e == nil {
			return "", false
		}
		key = binary.LittleEndian.AppendUint64(key, uint64(uintptr(unsafe.Pointer(e))))
	}
	return string(key), true
}

func newSharedType(key string, tv typeVersions, entries []*internEntry) *sharedType {
	return &sharedType{key: key, tv: tv, entries: entries}
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
