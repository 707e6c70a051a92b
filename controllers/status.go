package controllers

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// statusKind describes one kind to the shared status reconcile loop: how to
// make an empty object, where its conditions live, and which conditions it
// should carry (a pure function of the object).
type statusKind[T client.Object] struct {
	newObject  func() T
	conditions func(T) *[]metav1.Condition
	desired    func(T) []metav1.Condition
	// setFields, when set, updates the status fields besides the conditions
	// (after desired ran) and reports whether any changed.
	setFields func(T) bool
}

// reconcileStatus reads the object named by req, computes its conditions and
// writes the status subresource only when a condition changed. It returns
// transient errors so the request is requeued; user mistakes end up in
// conditions, not errors.
func reconcileStatus[T client.Object](ctx context.Context, c client.Client, rec recorder.EventRecorder, req ctrl.Request, kind statusKind[T]) (ctrl.Result, error) {
	obj := kind.newObject()
	if err := c.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			logOutcome(ctx, OutcomeGone, nil, nil)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	current := kind.conditions(obj)
	desired := kind.desired(obj)
	next := nextConditions(*current, desired, obj.GetGeneration())
	removeUndesired(&next, desired)
	fieldsChanged := kind.setFields != nil && kind.setFields(obj)
	accepted := meta.FindStatusCondition(next, meshv1alpha1.ConditionAccepted)
	if conditionsEqual(*current, next) && !fieldsChanged {
		logOutcome(ctx, OutcomeUnchanged, obj, accepted)
		return ctrl.Result{}, nil
	}
	before := meta.FindStatusCondition(*current, meshv1alpha1.ConditionAccepted)
	beforeProg := meta.FindStatusCondition(*current, meshv1alpha1.ConditionProgrammed)
	beforeOverride := meta.FindStatusCondition(*current, meshv1alpha1.ConditionSafetyOverride)
	*current = next
	if err := c.Status().Update(ctx, obj); err != nil {
		if apierrors.IsConflict(err) {
			// Our cached copy is stale; the newer version is already on its way
			// through the watch and will be reconciled.
			logOutcome(ctx, OutcomeConflict, obj, accepted)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("updating status: %w", err)
	}
	logOutcome(ctx, OutcomeUpdated, obj, accepted)
	recordAcceptedChange(rec, obj, before, meta.FindStatusCondition(next, meshv1alpha1.ConditionAccepted))
	recordRejection(rec, obj, beforeProg, meta.FindStatusCondition(next, meshv1alpha1.ConditionProgrammed))
	recordOverride(rec, obj, beforeOverride, meta.FindStatusCondition(next, meshv1alpha1.ConditionSafetyOverride))
	return ctrl.Result{}, nil
}

// transientConditions are the condition types an object carries only while
// they hold: the reconcilers remove them when no longer desired.
var transientConditions = []string{meshv1alpha1.ConditionSafetyOverride}

func removeUndesired(next *[]metav1.Condition, desired []metav1.Condition) {
	for _, typ := range transientConditions {
		if meta.FindStatusCondition(desired, typ) == nil {
			meta.RemoveStatusCondition(next, typ)
		}
	}
}

// recordOverride emits a Warning Event when an object starts to rely on an
// override of a safety rule (or the fields involved change).
func recordOverride(rec recorder.EventRecorder, obj client.Object, before, after *metav1.Condition) {
	if rec == nil || after == nil || (before != nil && before.Message == after.Message) {
		return
	}
	rec.Eventf(obj, nil, corev1.EventTypeWarning, after.Reason, "Validate", "%s", after.Message)
}

// recordRejection emits a Warning Event when a proxy rejects (NACKs) the
// object's config: when Programmed turns to reason Rejected or its message
// (the proxy and Envoy's words) changes.
func recordRejection(rec recorder.EventRecorder, obj client.Object, before, after *metav1.Condition) {
	if rec == nil || after == nil || after.Reason != meshv1alpha1.ReasonRejected {
		return
	}
	if before != nil && before.Reason == after.Reason && before.Message == after.Message {
		return
	}
	rec.Eventf(obj, nil, corev1.EventTypeWarning, after.Reason, "Program", "%s", after.Message)
}

// Outcomes of a status reconcile, the "outcome" key of its log line.
const (
	// OutcomeUpdated: the status changed and was written (logged at info level).
	OutcomeUpdated = "status updated"
	// OutcomeUnchanged: the status was already right (debug level, V(1)).
	OutcomeUnchanged = "unchanged"
	// OutcomeConflict: the cached copy was stale; the newer version comes (V(1)).
	OutcomeConflict = "conflict, newer version pending"
	// OutcomeGone: the object was deleted (V(1)).
	OutcomeGone = "gone"
)

// logOutcome writes the one line of a reconcile's outcome. The logger of
// ctx (controller-runtime's) already carries the controller, namespace and
// name; the line adds the object's generation and resourceVersion (key
// version) and its Accepted condition. A failed reconcile is logged by
// controller-runtime with its error; a change is logged at info level, the
// rest at V(1).
func logOutcome(ctx context.Context, outcome string, obj client.Object, accepted *metav1.Condition) {
	l := log.FromContext(ctx)
	if outcome != OutcomeUpdated {
		l = l.V(1)
	}
	kv := []any{"outcome", outcome}
	if obj != nil {
		kv = append(kv, "generation", obj.GetGeneration(), "version", obj.GetResourceVersion())
	}
	if accepted != nil {
		kv = append(kv, "accepted", string(accepted.Status), "reason", accepted.Reason)
	}
	l.Info("reconciled", kv...)
}

// nextConditions returns a copy of current with every desired condition set
// at the given generation. meta.SetStatusCondition keeps LastTransitionTime
// when a condition's status does not change.
func nextConditions(current, desired []metav1.Condition, generation int64) []metav1.Condition {
	next := make([]metav1.Condition, len(current))
	for i := range current {
		current[i].DeepCopyInto(&next[i])
	}
	for _, cond := range desired {
		cond.ObservedGeneration = generation
		meta.SetStatusCondition(&next, cond)
	}
	return next
}

// conditionsEqual compares two condition lists as sets keyed by type,
// ignoring LastTransitionTime.
func conditionsEqual(a, b []metav1.Condition) bool {
	if len(a) != len(b) {
		return false
	}
	for _, ca := range a {
		cb := meta.FindStatusCondition(b, ca.Type)
		if cb == nil || ca.Status != cb.Status || ca.Reason != cb.Reason ||
			ca.Message != cb.Message || ca.ObservedGeneration != cb.ObservedGeneration {
			return false
		}
	}
	return true
}

// recordAcceptedChange tells the user, through an Event, when an object is
// refused (Accepted turns False or its reason changes) and when a refused
// object is accepted again. A first acceptance is not worth an Event.
func recordAcceptedChange(rec recorder.EventRecorder, obj client.Object, before, after *metav1.Condition) {
	if rec == nil || after == nil {
		return
	}
	if before != nil && before.Status == after.Status && before.Reason == after.Reason {
		return
	}
	switch {
	case after.Status != metav1.ConditionTrue:
		rec.Eventf(obj, nil, corev1.EventTypeWarning, after.Reason, "Validate", "%s", after.Message)
	case before != nil:
		rec.Eventf(obj, nil, corev1.EventTypeNormal, after.Reason, "Validate", "%s", after.Message)
	}
}

// accepted is the Accepted condition for an object with the given problems:
// True when there are none, False with the given reason and a message naming
// the field otherwise.
func accepted(problems field.ErrorList, reason string) metav1.Condition {
	if len(problems) == 0 {
		return metav1.Condition{
			Type:    meshv1alpha1.ConditionAccepted,
			Status:  metav1.ConditionTrue,
			Reason:  meshv1alpha1.ReasonAccepted,
			Message: "the object is valid",
		}
	}
	return metav1.Condition{
		Type:    meshv1alpha1.ConditionAccepted,
		Status:  metav1.ConditionFalse,
		Reason:  reason,
		Message: ConditionMessage(problems),
	}
}

// ConditionMessage formats problems for a condition message or an Event: each as
// "<field path>: <detail>", joined by "; ".
func ConditionMessage(problems field.ErrorList) string {
	parts := make([]string, 0, len(problems))
	for _, p := range problems {
		parts = append(parts, p.Field+": "+p.Detail)
	}
	return strings.Join(parts, "; ")
}
