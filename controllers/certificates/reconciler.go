package certificates

import (
	"context"
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// Reconciler hands the Mesh's certificate settings to a
// Manager.
type Reconciler struct {
	// Reader reads the Mesh (the manager's cached client is fine).
	Reader  client.Reader
	Manager *Manager
}

// Reconcile implements reconcile.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if req.Name != meshv1alpha1.MeshName {
		return ctrl.Result{}, nil
	}
	mesh, err := readMesh(ctx, r.Reader)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.Manager.SetMesh(ctx, mesh); err != nil {
		return ctrl.Result{}, fmt.Errorf("certificate provider: %w", err)
	}
	return ctrl.Result{}, nil
}

// readMesh returns the Mesh "default", or nil when there is none.
func readMesh(ctx context.Context, r client.Reader) (*meshv1alpha1.Mesh, error) {
	mesh := &meshv1alpha1.Mesh{}
	if err := r.Get(ctx, client.ObjectKey{Name: meshv1alpha1.MeshName}, mesh); err != nil {
		if client.IgnoreNotFound(err) == nil {
			return nil, nil
		}
		return nil, fmt.Errorf("reading the Mesh: %w", err)
	}
	return mesh, nil
}

// SetupWithManager registers the reconciler and adds the manager to mgr.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.Add(r.Manager); err != nil {
		return fmt.Errorf("adding the certificate manager: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&meshv1alpha1.Mesh{}).
		Named("certificates").
		Complete(r)
}

// NewFor builds a Manager from mgr's client,
// API reader, config and event recorder, and registers it with its Mesh
// reconciler. opts' Client, Reader, Config, Recorder and Logger are filled
// in when empty.
func NewFor(mgr ctrl.Manager, opts Options) (*Manager, error) {
	if opts.Client == nil {
		opts.Client = mgr.GetClient()
	}
	if opts.Reader == nil {
		opts.Reader = mgr.GetAPIReader()
	}
	if opts.Config == nil {
		opts.Config = mgr.GetConfig()
	}
	if opts.Recorder == nil {
		opts.Recorder = mgr.GetEventRecorder(meshv1alpha1.EventSource)
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = mgr.GetLogger().WithName("certificates")
	}
	m := New(opts)
	if err := (&Reconciler{Reader: mgr.GetClient(), Manager: m}).SetupWithManager(mgr); err != nil {
		return nil, err
	}
	return m, nil
}
