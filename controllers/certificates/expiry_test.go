package certificates

import (
	"testing"
	"time"

	"github.com/capstanmesh/capstan/pki"
)

func TestEarliestWorkloadExpiry(t *testing.T) {
	m := &Manager{workloads: map[string]*certState{}}
	if _, ok := m.EarliestWorkloadExpiry(); ok {
		t.Fatal("EarliestWorkloadExpiry reports an expiry with no certificate held")
	}
	now := time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)
	m.workloads["a"] = &certState{cred: &pki.Credential{Cert: &pki.Certificate{NotAfter: now.Add(2 * time.Hour)}}}
	m.workloads["b"] = &certState{cred: &pki.Credential{Cert: &pki.Certificate{NotAfter: now.Add(time.Hour)}}}
	m.workloads["pending"] = &certState{}
	if got, ok := m.EarliestWorkloadExpiry(); !ok || !got.Equal(now.Add(time.Hour)) {
		t.Errorf("EarliestWorkloadExpiry = %v, %v; want %v, true", got, ok, now.Add(time.Hour))
	}
}
