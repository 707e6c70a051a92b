package controllers

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/controllers/meshstatus"
)

// MeshStatusReconciler hands the conditions the Mesh's own spec decides
// (MeshConditions: Accepted and Ready) to the Mesh's one status writer,
// which the certificate manager and the un-injected pods report share.
type MeshStatusReconciler struct {
	Client client.Client
	Status *meshstatus.Writer
}

// Reconcile implements reconcile.Reconciler.
func (r *MeshStatusReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	mesh := &meshv1alpha1.Mesh{}
	if err := r.Client.Get(ctx, req.NamespacedName, mesh); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	part := meshstatus.Part{
		Source:     "spec",
		Generation: mesh.Generation,
		Conditions: MeshConditions(mesh),
		Events:     map[string]string{meshv1alpha1.ConditionAccepted: "Validate"},
	}
	if _, err := r.Status.Write(ctx, part); err != nil {
		if meshstatus.IsConflict(err) {
			log.FromContext(ctx).V(1).Info("status update conflict, waiting for the newer version")
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, nil
}

// SetupWithManager registers the reconciler with mgr.
func (r *MeshStatusReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&meshv1alpha1.Mesh{}).
		Named("mesh").
		Complete(r)
}

// NewMeshStatusWriter returns the Mesh's status writer for mgr: it writes
// with the manager's client, re-reads from the API server after a
// conflict and records Events as EventSource. Create one per manager and
// hand it to every reporter.
func NewMeshStatusWriter(mgr ctrl.Manager) *meshstatus.Writer {
	return meshstatus.NewWriter(mgr.GetClient(), mgr.GetAPIReader(), mgr.GetEventRecorder(EventSource))
}
