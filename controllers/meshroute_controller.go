package controllers

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// +kubebuilder:rbac:groups=mesh.capstan.dev,resources=meshroutes,verbs=get;list;watch
// +kubebuilder:rbac:groups=mesh.capstan.dev,resources=meshroutes/status,verbs=update;patch

// MeshRouteReconciler sets the Accepted condition of MeshRoute objects.
type MeshRouteReconciler struct {
	Client   client.Client
	Recorder recorder.EventRecorder
}

// Reconcile implements reconcile.Reconciler.
func (r *MeshRouteReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return reconcileStatus(ctx, r.Client, r.Recorder, req, statusKind[*meshv1alpha1.MeshRoute]{
		newObject:  func() *meshv1alpha1.MeshRoute { return &meshv1alpha1.MeshRoute{} },
		conditions: func(o *meshv1alpha1.MeshRoute) *[]metav1.Condition { return &o.Status.Conditions },
		desired:    MeshRouteConditions,
	})
}

// SetupWithManager registers the reconciler with mgr.
func (r *MeshRouteReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&meshv1alpha1.MeshRoute{}).
		Named("meshroute").
		Complete(r)
}

// MeshRouteConditions returns the conditions a MeshRoute should carry.
func MeshRouteConditions(o *meshv1alpha1.MeshRoute) []metav1.Condition {
	return []metav1.Condition{accepted(ValidateMeshRoute(o), meshv1alpha1.ReasonInvalid)}
}
