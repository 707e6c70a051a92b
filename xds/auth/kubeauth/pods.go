package kubeauth

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
)

// podLookupTimeout bounds one read; the manager's cache answers locally.
const podLookupTimeout = 5 * time.Second

// PodLookup finds pods by namespace and name for the xDS server's stream
// authentication (auth.PodLookup): the pod's UID and ServiceAccount.
type PodLookup struct {
	// Reader is the manager's cached client.
	Reader client.Reader
}

// Pod returns the pod's UID and ServiceAccount; ok is false when the pod is
// unknown or cannot be read (the stream is then refused). A terminating
// pod is still found: its proxy may reconnect while it drains.
func (l PodLookup) Pod(namespace, name string) (uid, serviceAccount string, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), podLookupTimeout)
	defer cancel()
	var pod corev1.Pod
	if err := l.Reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &pod); err != nil {
		return "", "", false
	}
	return string(pod.UID), serviceAccountOf(&pod), true
}

// serviceAccountOf is the pod's ServiceAccount; the API server sets
// "default" when the pod names none.
func serviceAccountOf(pod *corev1.Pod) string {
	if pod.Spec.ServiceAccountName == "" {
		return "default"
	}
	return pod.Spec.ServiceAccountName
}

// PodRechecker tells the xDS server when a pod changes or is deleted
// (OnChange is server.Server.RecheckPod), so the pod's open streams are
// checked again at once: closed when the pod is gone or replaced. It runs
// on every replica, leader or not, as the xDS server does.
type PodRechecker struct {
	OnChange func(namespace, name string)
}

// SetupWithManager watches pods through the manager's shared cache.
func (r *PodRechecker) SetupWithManager(mgr ctrl.Manager) error {
	err := ctrl.NewControllerManagedBy(mgr).Named("xds-pod-recheck").For(&corev1.Pod{}).
		WithOptions(controller.Options{NeedLeaderElection: ptr.To(false)}).Complete(r)
	if err != nil {
		return fmt.Errorf("setting up the xDS pod recheck: %w", err)
	}
	return nil
}

// Reconcile implements reconcile.Reconciler.
func (r *PodRechecker) Reconcile(_ context.Context, req ctrl.Request) (ctrl.Result, error) {
	r.OnChange(req.Namespace, req.Name)
	return ctrl.Result{}, nil
}
