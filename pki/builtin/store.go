package builtin

import (
	"bytes"
	"context"
	"sync"
)

// RootStore persists the CA's roots, e.g. in a Secret in the operator's
// namespace. Load and Save carry the whole state at once:
//
//   - certPEM is the active root first, then the other roots still trusted
//     (a staged next root, previous roots kept for a rotation's overlap);
//   - keyPEM is the active root's private key first, then the staged next
//     root's key if there is one. Previous roots have no key: nothing signs
//     with them again.
//
// Load returns found=false (and no error) when nothing was saved yet; any
// other failure is an error, and the CA then refuses to start rather than
// replace a root it could not read. A Save that creates the state should
// fail if another writer created it first (a Secret Create, not an Update):
// the CA then loads what the other one saved.
type RootStore interface {
	Load(ctx context.Context) (certPEM, keyPEM []byte, found bool, err error)
	Save(ctx context.Context, certPEM, keyPEM []byte) error
}

// MemoryStore is a RootStore in memory, for tests. The zero value is empty
// and ready to use.
type MemoryStore struct {
	mu        sync.Mutex
	cert, key []byte
	found     bool
	saves     int
	LoadErr   error // if set, Load returns it
	SaveErr   error // if set, Save returns it and stores nothing
}

// Load implements RootStore.
func (m *MemoryStore) Load(context.Context) ([]byte, []byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.LoadErr != nil {
		return nil, nil, false, m.LoadErr
	}
	return bytes.Clone(m.cert), bytes.Clone(m.key), m.found, nil
}

// Save implements RootStore.
func (m *MemoryStore) Save(_ context.Context, certPEM, keyPEM []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.SaveErr != nil {
		return m.SaveErr
	}
	m.cert, m.key, m.found = bytes.Clone(certPEM), bytes.Clone(keyPEM), true
	m.saves++
	return nil
}

// Saves is how many times Save succeeded.
func (m *MemoryStore) Saves() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.saves
}
