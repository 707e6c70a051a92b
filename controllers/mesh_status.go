package controllers

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
		if apierrors.IsNotFound(err) {
			logOutcome(ctx, OutcomeGone, nil, nil)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	part := meshstatus.Part{
		Source:     "spec",
		Generation: mesh.Generation,
		Conditions: MeshConditions(mesh),
		Events:     map[string]string{meshv1alpha1.ConditionAccepted: "Validate"},
	}
	accepted := meta.FindStatusCondition(part.Conditions, meshv1alpha1.ConditionAccepted)
	changed, err := r.Status.Write(ctx, part)
	switch {
	case meshstatus.IsConflict(err):
		logOutcome(ctx, OutcomeConflict, mesh, accepted)
		return ctrl.Result{}, nil
	case err != nil:
		return ctrl.Result{}, err
	case changed:
		logOutcome(ctx, OutcomeUpdated, mesh, accepted)
	default:
		logOutcome(ctx, OutcomeUnchanged, mesh, accepted)
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
