package controllers

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/api/validation"
)

// The conditions each kind's own spec decides (SpecStatusReconciler).

// MeshConditions returns the conditions a Mesh should carry: Accepted
// (NotDefault for any Mesh but "default") and Ready, which for now follows
// Accepted.
func MeshConditions(m *meshv1alpha1.Mesh) []metav1.Condition {
	acc := accepted(ValidateMeshName(m), meshv1alpha1.ReasonNotDefault)
	if acc.Status == metav1.ConditionTrue {
		acc = accepted(ValidateMesh(m), meshv1alpha1.ReasonInvalid)
	}
	return []metav1.Condition{acc, meshReady(acc)}
}

func meshReady(acc metav1.Condition) metav1.Condition {
	if acc.Status != metav1.ConditionTrue {
		return metav1.Condition{
			Type:    meshv1alpha1.ConditionReady,
			Status:  metav1.ConditionFalse,
			Reason:  meshv1alpha1.ReasonNotReady,
			Message: "the Mesh is not accepted: " + acc.Message,
		}
	}
	return metav1.Condition{
		Type:    meshv1alpha1.ConditionReady,
		Status:  metav1.ConditionTrue,
		Reason:  meshv1alpha1.ReasonReady,
		Message: "the mesh is ready",
	}
}

// MeshRouteConditions returns the conditions a MeshRoute should carry.
func MeshRouteConditions(o *meshv1alpha1.MeshRoute) []metav1.Condition {
	return []metav1.Condition{accepted(ValidateMeshRoute(o), meshv1alpha1.ReasonInvalid)}
}

// DestinationPolicyConditions returns the conditions a DestinationPolicy should carry.
func DestinationPolicyConditions(o *meshv1alpha1.DestinationPolicy) []metav1.Condition {
	conds := []metav1.Condition{accepted(ValidateDestinationPolicy(o), meshv1alpha1.ReasonInvalid)}
	if c := aggressiveEjection(o); c != nil {
		conds = append(conds, *c)
	}
	return conds
}

// aggressiveEjection is the SafetyOverride condition of a policy whose
// outlier detection can eject the whole pool and that is admitted only
// because it carries capstan.dev/allow-aggressive-ejection: "true" (the one
// rule, api/validation); nil when the policy keeps the rule.
func aggressiveEjection(o *meshv1alpha1.DestinationPolicy) *metav1.Condition {
	if !validation.AllowsAggressiveEjection(o) {
		return nil
	}
	problems := validation.WholePoolEjections(o)
	if len(problems) == 0 {
		return nil
	}
	return &metav1.Condition{
		Type:   meshv1alpha1.ConditionSafetyOverride,
		Status: metav1.ConditionTrue,
		Reason: meshv1alpha1.ReasonAggressiveEjectionAllowed,
		Message: "admitted through " + meshv1alpha1.AnnotationAllowAggressiveEjection + ": outlier detection can eject every endpoint: " +
			ConditionMessage(problems),
	}
}

// PeerAuthenticationConditions returns the conditions a PeerAuthentication should carry.
func PeerAuthenticationConditions(o *meshv1alpha1.PeerAuthentication) []metav1.Condition {
	return []metav1.Condition{accepted(ValidatePeerAuthentication(o), meshv1alpha1.ReasonInvalid)}
}
