// Package meshstatus is the one writer of the Mesh's status. Each reporter
// (the Mesh's own spec checks, the certificate manager's issuer state, the
// un-injected pods report) hands it its Part; the writer merges that part
// into the Mesh's current status, writes only when something changed, with
// observedGeneration on every condition, and records the Events that the
// part's condition changes call for.
package meshstatus

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// The writer updates the Mesh status subresource:
// +kubebuilder:rbac:groups=mesh.capstan.dev,resources=meshes/status,verbs=update

// Part is one reporter's share of the Mesh's status.
type Part struct {
	// Source names the reporter in logs.
	Source string
	// Generation, when not zero, is the Mesh generation the part was
	// computed from: a Mesh at another generation is left alone (the
	// reporter runs again for the new one). With zero the part holds at
	// any generation.
	Generation int64
	// Conditions are set; their ObservedGeneration is the Mesh's.
	Conditions []metav1.Condition
	// Remove are condition types the part removes.
	Remove []string
	// Fields, when set, writes the part's status fields and reports
	// whether any changed.
	Fields func(*meshv1alpha1.MeshStatus) bool
	// Events maps a condition type of the part to the action of the Event
	// recorded when that condition's status or reason changes: a Warning
	// when it is not True, a Normal one when it turns True again.
	Events map[string]string
}

// Writer writes the Mesh's status; one Writer per operator is shared by
// every reporter, and its writes are serialized.
type Writer struct {
	client   client.Client
	reader   client.Reader
	recorder recorder.EventRecorder

	mu sync.Mutex
}

// NewWriter returns a Writer that writes with c. It reads the Mesh with c
// (the manager's cache) and, after a conflict, with apiReader when that is
// not nil; rec records the Events (none when nil).
func NewWriter(c client.Client, apiReader client.Reader, rec recorder.EventRecorder) *Writer {
	if apiReader == nil {
		apiReader = c
	}
	return &Writer{client: c, reader: apiReader, recorder: rec}
}

// Write applies part to the Mesh's status and writes the status when it
// changed; it reports whether it wrote. A Mesh that does not exist, or
// that moved past part.Generation, is left alone. A write that still
// conflicts after a few fresh reads returns the conflict error
// (apierrors.IsConflict).
func (w *Writer) Write(ctx context.Context, part Part) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var (
		mesh    *meshv1alpha1.Mesh
		before  []metav1.Condition
		written bool
		read    client.Reader = w.client
	)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		mesh, written = &meshv1alpha1.Mesh{}, false
		err := read.Get(ctx, client.ObjectKey{Name: meshv1alpha1.MeshName}, mesh)
		read = w.reader // a conflict means the cache is behind
		if err != nil || (part.Generation != 0 && mesh.Generation != part.Generation) {
			mesh = nil
			return client.IgnoreNotFound(err)
		}
		before = copyConditions(mesh.Status.Conditions)
		if !apply(&mesh.Status, part, mesh.Generation) {
			return nil
		}
		written = true
		return w.client.Status().Update(ctx, mesh)
	})
	if err != nil {
		return false, fmt.Errorf("updating the Mesh status (%s): %w", part.Source, err)
	}
	if written {
		log.FromContext(ctx).V(1).Info("Mesh status updated", "source", part.Source, "generation", mesh.Generation)
		w.recordEvents(mesh, part, before)
	}
	return written, nil
}

// IsConflict reports whether err is a write conflict that persisted: the
// newer Mesh is on its way through the watch.
func IsConflict(err error) bool { return apierrors.IsConflict(err) }

// apply merges part into st at the given generation and reports whether
// anything changed.
func apply(st *meshv1alpha1.MeshStatus, part Part, generation int64) bool {
	changed := false
	for _, c := range part.Conditions {
		c.ObservedGeneration = generation
		changed = meta.SetStatusCondition(&st.Conditions, c) || changed
	}
	for _, t := range part.Remove {
		changed = meta.RemoveStatusCondition(&st.Conditions, t) || changed
	}
	if part.Fields != nil {
		changed = part.Fields(st) || changed
	}
	return changed
}

func copyConditions(in []metav1.Condition) []metav1.Condition {
	out := make([]metav1.Condition, len(in))
	for i := range in {
		in[i].DeepCopyInto(&out[i])
	}
	return out
}

// recordEvents records an Event for each condition of part.Events whose
// status or reason changed: a Warning when it is not True, a Normal one
// when it turns True after having been something else. A first True is
// not worth an Event.
func (w *Writer) recordEvents(mesh *meshv1alpha1.Mesh, part Part, before []metav1.Condition) {
	if w.recorder == nil {
		return
	}
	for _, c := range part.Conditions {
		action, ok := part.Events[c.Type]
		if !ok {
			continue
		}
		prev := meta.FindStatusCondition(before, c.Type)
		if prev != nil && prev.Status == c.Status && prev.Reason == c.Reason {
			continue
		}
		switch {
		case c.Status != metav1.ConditionTrue:
			w.recorder.Eventf(mesh, nil, corev1.EventTypeWarning, c.Reason, action, "%s", c.Message)
		case prev != nil:
			w.recorder.Eventf(mesh, nil, corev1.EventTypeNormal, c.Reason, action, "%s", c.Message)
		}
	}
}
