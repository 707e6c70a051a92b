package controllers

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// +kubebuilder:rbac:groups=mesh.capstan.dev,resources=peerauthentications,verbs=get;list;watch
// +kubebuilder:rbac:groups=mesh.capstan.dev,resources=peerauthentications/status,verbs=update;patch

// PeerAuthenticationReconciler sets the Accepted condition of PeerAuthentication objects.
type PeerAuthenticationReconciler struct {
	Client   client.Client
	Recorder recorder.EventRecorder
}

// Reconcile implements reconcile.Reconciler.
func (r *PeerAuthenticationReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return reconcileStatus(ctx, r.Client, r.Recorder, req, statusKind[*meshv1alpha1.PeerAuthentication]{
		newObject:  func() *meshv1alpha1.PeerAuthentication { return &meshv1alpha1.PeerAuthentication{} },
		conditions: func(o *meshv1alpha1.PeerAuthentication) *[]metav1.Condition { return &o.Status.Conditions },
		desired:    PeerAuthenticationConditions,
	})
}

// SetupWithManager registers the reconciler with mgr.
func (r *PeerAuthenticationReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&meshv1alpha1.PeerAuthentication{}).
		Named("peerauthentication").
		Complete(r)
}

// PeerAuthenticationConditions returns the conditions a PeerAuthentication should carry.
func PeerAuthenticationConditions(o *meshv1alpha1.PeerAuthentication) []metav1.Condition {
	return []metav1.Condition{accepted(ValidatePeerAuthentication(o), meshv1alpha1.ReasonInvalid)}
}
