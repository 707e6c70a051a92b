package controllers

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// +kubebuilder:rbac:groups=mesh.capstan.dev,resources=destinationpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=mesh.capstan.dev,resources=destinationpolicies/status,verbs=update;patch

// DestinationPolicyReconciler sets the Accepted condition of DestinationPolicy objects.
type DestinationPolicyReconciler struct {
	Client   client.Client
	Recorder recorder.EventRecorder
}

// Reconcile implements reconcile.Reconciler.
func (r *DestinationPolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return reconcileStatus(ctx, r.Client, r.Recorder, req, statusKind[*meshv1alpha1.DestinationPolicy]{
		newObject:  func() *meshv1alpha1.DestinationPolicy { return &meshv1alpha1.DestinationPolicy{} },
		conditions: func(o *meshv1alpha1.DestinationPolicy) *[]metav1.Condition { return &o.Status.Conditions },
		desired:    DestinationPolicyConditions,
	})
}

// SetupWithManager registers the reconciler with mgr.
func (r *DestinationPolicyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&meshv1alpha1.DestinationPolicy{}).
		Named("destinationpolicy").
		Complete(r)
}

// DestinationPolicyConditions returns the conditions a DestinationPolicy should carry.
func DestinationPolicyConditions(o *meshv1alpha1.DestinationPolicy) []metav1.Condition {
	return []metav1.Condition{accepted(ValidateDestinationPolicy(o), meshv1alpha1.ReasonInvalid)}
}
