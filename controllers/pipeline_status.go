package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	"sigs.k8s.io/controller-runtime/pkg/source"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/controllers/meshstatus"
	"github.com/capstanmesh/capstan/controllers/uninjected"
	"github.com/capstanmesh/capstan/xds/ir"
	"github.com/capstanmesh/capstan/xds/translate"
)

// pipelineKind describes a kind whose status comes from the xDS pipeline.
type pipelineKind[T client.Object] struct {
	kind       string
	newObject  func() T
	conditions func(T) *[]metav1.Condition
	// local are the conditions the object's own checks give (Accepted).
	local func(T) []metav1.Condition
	// proxies points at the object's proxy counts.
	proxies func(T) **meshv1alpha1.ProxyCounts
}

// PipelineStatusReconciler writes the status of one mesh kind from the
// pipeline's verdict (Accepted, ResolvedRefs, Programmed, proxy count) held in
// the StatusStore; until the pipeline has seen the object's generation it
// writes the object's own validation result. It writes only when something changed.
type PipelineStatusReconciler[T client.Object] struct {
	Client   client.Client
	Recorder recorder.EventRecorder
	Store    *StatusStore
	kind     pipelineKind[T]
}

// Reconcile implements reconcile.Reconciler.
func (r *PipelineStatusReconciler[T]) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var proxies *meshv1alpha1.ProxyCounts
	return reconcileStatus(ctx, r.Client, r.Recorder, req, statusKind[T]{
		newObject:  r.kind.newObject,
		conditions: r.kind.conditions,
		desired: func(obj T) []metav1.Condition {
			conds, n := r.desired(obj)
			proxies = n
			return conds
		},
		setFields: func(obj T) bool { return r.setProxies(obj, proxies) },
	})
}

// desired merges the pipeline's verdict with the object's own checks: a
// local refusal wins over the pipeline's acceptance.
func (r *PipelineStatusReconciler[T]) desired(obj T) ([]metav1.Condition, *meshv1alpha1.ProxyCounts) {
	local := r.kind.local(obj)
	ref := ir.ObjectRef{Kind: r.kind.kind, Namespace: obj.GetNamespace(), Name: obj.GetName()}
	conds, proxies, ok := r.Store.Lookup(ref, obj.GetGeneration())
	if !ok {
		return local, nil
	}
	out := make([]metav1.Condition, len(conds))
	copy(out, conds)
	if acc := meta.FindStatusCondition(local, meshv1alpha1.ConditionAccepted); acc != nil && acc.Status != metav1.ConditionTrue {
		meta.SetStatusCondition(&out, *acc)
		meta.SetStatusCondition(&out, metav1.Condition{Type: meshv1alpha1.ConditionProgrammed, Status: metav1.ConditionFalse,
			Reason: acc.Reason, Message: "not programmed: the object is not accepted"})
	}
	for _, typ := range transientConditions {
		if c := meta.FindStatusCondition(local, typ); c != nil {
			meta.SetStatusCondition(&out, *c)
		}
	}
	return out, proxies
}

// setProxies sets the object's proxy counts; nil (the pipeline has none
// for this generation yet) leaves the written ones.
func (r *PipelineStatusReconciler[T]) setProxies(obj T, proxies *meshv1alpha1.ProxyCounts) bool {
	p := r.kind.proxies(obj)
	if proxies == nil || (*p != nil && **p == *proxies) {
		return false
	}
	*p = proxies.DeepCopy()
	return true
}

// SetupWithManager watches the kind and the store's events for it.
func (r *PipelineStatusReconciler[T]) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(r.kind.newObject()).
		Named(r.kind.kind + "-status").
		WatchesRawSource(source.Channel(r.Store.Events(r.kind.kind), &handler.EnqueueRequestForObject{})).
		Complete(r)
}

// SetupWithStatusStore registers the Mesh reconciler and, for MeshRoute,
// DestinationPolicy and PeerAuthentication, status reconcilers fed by the
// pipeline through store. Use it instead of SetupWithManager when the xDS
// pipeline runs. meshStatus is the Mesh's status writer, shared with the
// certificate manager (NewMeshStatusWriter when nil).
func SetupWithStatusStore(mgr ctrl.Manager, store *StatusStore, meshStatus *meshstatus.Writer) error {
	c, rec := mgr.GetClient(), mgr.GetEventRecorder(EventSource)
	if meshStatus == nil {
		meshStatus = NewMeshStatusWriter(mgr)
	}
	setups := []func(ctrl.Manager) error{
		(&MeshStatusReconciler{Client: c, Status: meshStatus}).SetupWithManager,
		(&PipelineStatusReconciler[*meshv1alpha1.MeshRoute]{Client: c, Recorder: rec, Store: store, kind: meshRouteKind}).SetupWithManager,
		(&PipelineStatusReconciler[*meshv1alpha1.DestinationPolicy]{Client: c, Recorder: rec, Store: store, kind: destinationPolicyKind}).SetupWithManager,
		(&PipelineStatusReconciler[*meshv1alpha1.PeerAuthentication]{Client: c, Recorder: rec, Store: store, kind: peerAuthenticationKind}).SetupWithManager,
		(&uninjected.Reconciler{Client: c, Recorder: rec, Status: meshStatus}).SetupWithManager,
	}
	for _, setup := range setups {
		if err := setup(mgr); err != nil {
			return fmt.Errorf("setting up a status controller: %w", err)
		}
	}
	return nil
}

var meshRouteKind = pipelineKind[*meshv1alpha1.MeshRoute]{
	kind:       translate.KindMeshRoute,
	newObject:  func() *meshv1alpha1.MeshRoute { return &meshv1alpha1.MeshRoute{} },
	conditions: func(o *meshv1alpha1.MeshRoute) *[]metav1.Condition { return &o.Status.Conditions },
	local:      MeshRouteConditions,
	proxies:    func(o *meshv1alpha1.MeshRoute) **meshv1alpha1.ProxyCounts { return &o.Status.Proxies },
}

var destinationPolicyKind = pipelineKind[*meshv1alpha1.DestinationPolicy]{
	kind:       translate.KindDestinationPolicy,
	newObject:  func() *meshv1alpha1.DestinationPolicy { return &meshv1alpha1.DestinationPolicy{} },
	conditions: func(o *meshv1alpha1.DestinationPolicy) *[]metav1.Condition { return &o.Status.Conditions },
	local:      DestinationPolicyConditions,
	proxies:    func(o *meshv1alpha1.DestinationPolicy) **meshv1alpha1.ProxyCounts { return &o.Status.Proxies },
}

var peerAuthenticationKind = pipelineKind[*meshv1alpha1.PeerAuthentication]{
	kind:       translate.KindPeerAuthentication,
	newObject:  func() *meshv1alpha1.PeerAuthentication { return &meshv1alpha1.PeerAuthentication{} },
	conditions: func(o *meshv1alpha1.PeerAuthentication) *[]metav1.Condition { return &o.Status.Conditions },
	local:      PeerAuthenticationConditions,
	proxies:    func(o *meshv1alpha1.PeerAuthentication) **meshv1alpha1.ProxyCounts { return &o.Status.Proxies },
}
