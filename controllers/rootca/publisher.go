package rootca

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/pki"
)

// labelManagedBy marks the ConfigMaps the publisher owns.
const labelManagedBy = "app.kubernetes.io/managed-by"

// bundleRetry is how soon a namespace is looked at again when there is no
// bundle to publish yet.
const bundleRetry = 2 * time.Second

// BundleSource is where the mesh's current trust bundle comes from (the
// certificate provider in use).
type BundleSource interface {
	TrustBundle(ctx context.Context) ([]byte, error)
}

// The root CA ConfigMap by name only: the cache lists and watches
// ConfigMaps with a metadata.name field selector (NameScopedCache), which the
// API server authorizes against resourceNames. Kubernetes cannot restrict
// create by name (the name is not known when it authorizes), so create is a
// rule of its own on every ConfigMap.
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=configmaps,resourceNames=capstan-root-ca,verbs=get;list;watch;update
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=create

// Publisher keeps the ConfigMap capstan-root-ca, holding the mesh's
// trust bundle, in every namespace with injection enabled: injected proxies
// mount it to verify the xDS server, and cannot start without it. It
// rewrites the ConfigMap when the bundle changes (call BundleChanged) and
// when someone edits or deletes it.
type Publisher struct {
	// Client reads Namespaces (cached) and writes ConfigMaps.
	Client client.Client
	// Reader reads ConfigMaps from the API server: only their metadata is
	// cached, and only the root CA's.
	Reader client.Reader
	Bundle BundleSource

	changes chan event.GenericEvent

	mu   sync.Mutex
	last []byte // the bundle of the last BundleChanged that republished
}

// BundleChanged republishes the bundle to every enabled namespace if it
// differs from the one last republished. It does not block.
func (p *Publisher) BundleChanged() {
	b, err := p.Bundle.TrustBundle(context.Background())
	if err != nil {
		return // nothing to publish yet; the next change will come
	}
	p.mu.Lock()
	same := bytes.Equal(b, p.last)
	p.last = b
	p.mu.Unlock()
	if same {
		return
	}
	select {
	case p.changes <- event.GenericEvent{Object: &corev1.Namespace{}}:
	default: // one pending republish is enough
	}
}

// SetupWithManager registers the publisher.
func (p *Publisher) SetupWithManager(mgr ctrl.Manager) error {
	p.changes = make(chan event.GenericEvent, 1)
	rootCA := predicate.NewPredicateFuncs(func(o client.Object) bool { return o.GetName() == meshv1alpha1.RootCAConfigMapName })
	err := ctrl.NewControllerManagedBy(mgr).
		Named("rootca").
		For(&corev1.Namespace{}, builder.WithPredicates(predicate.NewPredicateFuncs(injectionEnabled))).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(namespaceOf),
			builder.OnlyMetadata, builder.WithPredicates(rootCA)).
		WatchesRawSource(source.Channel(p.changes, handler.EnqueueRequestsFromMapFunc(p.enabledNamespaces))).
		Complete(p)
	if err != nil {
		return fmt.Errorf("setting up the root CA publisher: %w", err)
	}
	return nil
}

func injectionEnabled(o client.Object) bool {
	return o.GetLabels()[meshv1alpha1.LabelInject] == meshv1alpha1.InjectEnabled
}

func namespaceOf(_ context.Context, o client.Object) []reconcile.Request {
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: o.GetNamespace()}}}
}

// enabledNamespaces lists every namespace with injection enabled.
func (p *Publisher) enabledNamespaces(ctx context.Context, _ client.Object) []reconcile.Request {
	var list corev1.NamespaceList
	if err := p.Client.List(ctx, &list, client.MatchingLabels{meshv1alpha1.LabelInject: meshv1alpha1.InjectEnabled}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing namespaces to republish the root CA")
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Name: list.Items[i].Name}})
	}
	return out
}

// Reconcile writes the bundle into the namespace's ConfigMap if the
// namespace has injection enabled and the ConfigMap differs.
func (p *Publisher) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var ns corev1.Namespace
	if err := p.Client.Get(ctx, req.NamespacedName, &ns); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !injectionEnabled(&ns) || ns.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}
	bundle, err := p.Bundle.TrustBundle(ctx)
	if err != nil {
		// The provider is still starting (or its issuer is not ready, which
		// the Mesh's IssuerReady condition says): look again shortly.
		ctrl.LoggerFrom(ctx).V(1).Info("no trust bundle to publish yet", "error", err.Error())
		return ctrl.Result{RequeueAfter: bundleRetry}, nil
	}
	return ctrl.Result{}, p.ensureConfigMap(ctx, ns.Name, bundle)
}

// rootCAData is the ConfigMap's content: the bundle and its roots'
// fingerprints, which injected proxies report to the xDS server.
func rootCAData(bundle []byte) map[string]string {
	data := map[string]string{meshv1alpha1.RootCAConfigMapKey: string(bundle)}
	if fps, err := pki.RootFingerprints(bundle); err == nil {
		data[meshv1alpha1.RootCAConfigMapFingerprintsKey] = pki.JoinFingerprints(fps)
	}
	return data
}

func (p *Publisher) ensureConfigMap(ctx context.Context, namespace string, bundle []byte) error {
	var cm corev1.ConfigMap
	key := client.ObjectKey{Namespace: namespace, Name: meshv1alpha1.RootCAConfigMapName}
	err := p.Reader.Get(ctx, key, &cm)
	switch {
	case apierrors.IsNotFound(err):
		cm = corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: meshv1alpha1.RootCAConfigMapName,
				Labels: map[string]string{labelManagedBy: "capstan"}},
			Data: rootCAData(bundle),
		}
		if err := p.Client.Create(ctx, &cm); err != nil {
			return fmt.Errorf("creating ConfigMap %s: %w", key, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("reading ConfigMap %s: %w", key, err)
	}
	want := rootCAData(bundle)
	if maps.Equal(cm.Data, want) && cm.Labels[labelManagedBy] == "capstan" {
		return nil
	}
	if cm.Labels == nil {
		cm.Labels = map[string]string{}
	}
	cm.Labels[labelManagedBy] = "capstan"
	cm.Data = want
	if err := p.Client.Update(ctx, &cm); err != nil {
		return fmt.Errorf("updating ConfigMap %s: %w", key, err)
	}
	return nil
}
