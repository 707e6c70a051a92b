package controllers

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func cond(condType string, status metav1.ConditionStatus, reason string, gen int64, at time.Time) metav1.Condition {
	return metav1.Condition{Type: condType, Status: status, Reason: reason, Message: reason,
		ObservedGeneration: gen, LastTransitionTime: metav1.NewTime(at)}
}

func TestNextConditions(t *testing.T) {
	old := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	current := []metav1.Condition{cond("Accepted", metav1.ConditionTrue, "Accepted", 1, old)}

	same := nextConditions(current, []metav1.Condition{cond("Accepted", metav1.ConditionTrue, "Accepted", 0, time.Time{})}, 1)
	if !conditionsEqual(current, same) {
		t.Errorf("an unchanged condition compares unequal: %+v vs %+v", current, same)
	}

	bumped := nextConditions(current, []metav1.Condition{cond("Accepted", metav1.ConditionTrue, "Accepted", 0, time.Time{})}, 2)
	if conditionsEqual(current, bumped) {
		t.Error("a new observedGeneration compares equal")
	}
	if !bumped[0].LastTransitionTime.Time.Equal(old) {
		t.Errorf("LastTransitionTime moved to %s without a status change", bumped[0].LastTransitionTime)
	}
	if current[0].ObservedGeneration != 1 {
		t.Error("nextConditions changed its input")
	}

	flipped := nextConditions(current, []metav1.Condition{cond("Accepted", metav1.ConditionFalse, "Invalid", 0, time.Time{})}, 2)
	if flipped[0].LastTransitionTime.Time.Equal(old) {
		t.Error("LastTransitionTime kept across a status change")
	}

	added := nextConditions(current, []metav1.Condition{cond("Ready", metav1.ConditionTrue, "Ready", 0, time.Time{})}, 1)
	if conditionsEqual(current, added) || len(added) != 2 {
		t.Errorf("adding a condition: %+v", added)
	}
}

func TestConditionsEqualIgnoresOrderAndTime(t *testing.T) {
	a := []metav1.Condition{
		cond("Accepted", metav1.ConditionTrue, "Accepted", 1, time.Unix(1, 0)),
		cond("Ready", metav1.ConditionTrue, "Ready", 1, time.Unix(2, 0)),
	}
	b := []metav1.Condition{
		cond("Ready", metav1.ConditionTrue, "Ready", 1, time.Unix(3, 0)),
		cond("Accepted", metav1.ConditionTrue, "Accepted", 1, time.Unix(4, 0)),
	}
	if !conditionsEqual(a, b) {
		t.Error("equal conditions in another order, with other times, compare unequal")
	}
	b[0].Message = "changed"
	if conditionsEqual(a, b) {
		t.Error("a changed message compares equal")
	}
}
