package certificates

import (
	"context"
	"errors"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/controllers/meshstatus"
	"github.com/capstanmesh/capstan/pki"
)

// issuerState is what the Mesh's IssuerReady condition should say.
type issuerState struct {
	known   bool
	ok      bool
	reason  string
	message string
}

// issuerStateOf maps an issuance or readiness error to the condition.
func issuerStateOf(err error) issuerState {
	switch {
	case err == nil:
		return issuerState{known: true, ok: true}
	case errors.Is(err, pki.ErrRequestDenied):
		return issuerState{known: true, reason: meshv1alpha1.ReasonRequestDenied, message: err.Error()}
	case errors.Is(err, pki.ErrIssuerNotReady):
		return issuerState{known: true, reason: meshv1alpha1.ReasonIssuerNotReady, message: err.Error()}
	default:
		return issuerState{known: true, reason: meshv1alpha1.ReasonIssuanceFailed, message: err.Error()}
	}
}

// condition is the IssuerReady condition for s; the Mesh's status writer
// sets its observedGeneration.
func (s issuerState) condition() metav1.Condition {
	c := metav1.Condition{
		Type:    meshv1alpha1.ConditionIssuerReady,
		Status:  metav1.ConditionTrue,
		Reason:  meshv1alpha1.ReasonIssuerReady,
		Message: "workload certificates are being issued",
	}
	if !s.ok {
		c.Status, c.Reason = metav1.ConditionFalse, s.reason
		c.Message = truncate(s.message+"; proxies keep their current certificates until they expire", 1024)
	}
	return c
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// setIssuerLocked records the issuer's state; runIssuerReporter hands it
// to the Mesh's status writer. m.mu is held.
func (m *Manager) setIssuerLocked(s issuerState) {
	if s == m.issuer {
		return
	}
	m.issuer = s
	select {
	case m.statusDirty <- struct{}{}:
	default:
	}
}

// runIssuerReporter hands the IssuerReady condition to the Mesh's status
// writer whenever it changes, retrying failed writes.
func (m *Manager) runIssuerReporter(ctx context.Context) {
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.statusDirty:
		case <-retry:
		}
		retry = nil
		if err := m.writeIssuerCondition(ctx); err != nil && ctx.Err() == nil {
			m.log.Error(err, "writing the Mesh's IssuerReady condition failed; retrying")
			retry = time.After(5 * time.Second)
		}
	}
}

// writeIssuerCondition hands the IssuerReady condition to the Mesh's
// status writer, which writes it when it differs and records an Event
// when its status or reason changed.
func (m *Manager) writeIssuerCondition(ctx context.Context) error {
	m.mu.Lock()
	state := m.issuer
	exists := m.cfg != nil && m.cfg.meshExists
	m.mu.Unlock()
	if !state.known || !exists {
		return nil
	}
	_, err := m.opts.MeshStatus.Write(ctx, meshstatus.Part{
		Source:     "certificates",
		Conditions: []metav1.Condition{state.condition()},
		Events:     map[string]string{meshv1alpha1.ConditionIssuerReady: "IssueCertificate"},
	})
	return err
}

// EarliestWorkloadExpiry returns when the first of the workload
// certificates held expires; ok is false when none is held.
func (m *Manager) EarliestWorkloadExpiry() (earliest time.Time, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, st := range m.workloads {
		if st.cred == nil || st.cred.Cert == nil {
			continue
		}
		if na := st.cred.Cert.NotAfter; !ok || na.Before(earliest) {
			earliest, ok = na, true
		}
	}
	return earliest, ok
}
