package controllers

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// +kubebuilder:rbac:groups=mesh.capstan.dev,resources=meshes;meshroutes;destinationpolicies;peerauthentications,verbs=get;list;watch
// +kubebuilder:rbac:groups=mesh.capstan.dev,resources=meshes/status;meshroutes/status;destinationpolicies/status;peerauthentications/status,verbs=update;patch

// SpecStatusReconciler writes the conditions an object's own spec decides
// (Accepted, and Ready for the Mesh), with observedGeneration, and only
// when they changed. The pipeline's PipelineStatusReconciler adds the
// conditions that need the mesh for routes and policies; the Mesh has only
// these.
type SpecStatusReconciler[T client.Object] struct {
	Client   client.Client
	Recorder recorder.EventRecorder
	name     string
	kind     statusKind[T]
}

// Reconcile implements reconcile.Reconciler.
func (r *SpecStatusReconciler[T]) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return reconcileStatus(ctx, r.Client, r.Recorder, req, r.kind)
}

// SetupWithManager registers the reconciler with mgr.
func (r *SpecStatusReconciler[T]) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(r.kind.newObject()).
		Named(r.name).
		Complete(r)
}

// NewMeshRouteReconciler sets the Accepted condition of MeshRoute objects.
func NewMeshRouteReconciler(c client.Client, rec recorder.EventRecorder) *SpecStatusReconciler[*meshv1alpha1.MeshRoute] {
	return specStatusOf(c, rec, "meshroute", meshRouteKind)
}

// NewDestinationPolicyReconciler sets the Accepted condition of DestinationPolicy objects.
func NewDestinationPolicyReconciler(c client.Client, rec recorder.EventRecorder) *SpecStatusReconciler[*meshv1alpha1.DestinationPolicy] {
	return specStatusOf(c, rec, "destinationpolicy", destinationPolicyKind)
}

// NewPeerAuthenticationReconciler sets the Accepted condition of PeerAuthentication objects.
func NewPeerAuthenticationReconciler(c client.Client, rec recorder.EventRecorder) *SpecStatusReconciler[*meshv1alpha1.PeerAuthentication] {
	return specStatusOf(c, rec, "peerauthentication", peerAuthenticationKind)
}

// specStatusOf is the spec-only reconciler of a pipeline kind: its own
// conditions, without the pipeline's.
func specStatusOf[T client.Object](c client.Client, rec recorder.EventRecorder, name string, k pipelineKind[T]) *SpecStatusReconciler[T] {
	return &SpecStatusReconciler[T]{Client: c, Recorder: rec, name: name,
		kind: statusKind[T]{newObject: k.newObject, conditions: k.conditions, desired: k.local}}
}
