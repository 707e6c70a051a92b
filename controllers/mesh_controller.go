package controllers

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// +kubebuilder:rbac:groups=mesh.capstan.dev,resources=meshes,verbs=get;list;watch
// +kubebuilder:rbac:groups=mesh.capstan.dev,resources=meshes/status,verbs=update;patch

// MeshReconciler sets the Accepted and Ready conditions of Mesh objects.
type MeshReconciler struct {
	Client   client.Client
	Recorder recorder.EventRecorder
}

// Reconcile implements reconcile.Reconciler.
func (r *MeshReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return reconcileStatus(ctx, r.Client, r.Recorder, req, statusKind[*meshv1alpha1.Mesh]{
		newObject:  func() *meshv1alpha1.Mesh { return &meshv1alpha1.Mesh{} },
		conditions: func(m *meshv1alpha1.Mesh) *[]metav1.Condition { return &m.Status.Conditions },
		desired:    MeshConditions,
	})
}

// SetupWithManager registers the reconciler with mgr.
func (r *MeshReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&meshv1alpha1.Mesh{}).
		Named("mesh").
		Complete(r)
}

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
