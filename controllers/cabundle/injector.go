package cabundle

import (
	"bytes"
	"context"
	"fmt"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// Only Capstan's own webhook configurations, by name (the names config/webhook
// renders, DefaultMutatingWebhookConfiguration and
// DefaultValidatingWebhookConfiguration); the cache watches them with a
// metadata.name field selector (NameScopedCache).
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingwebhookconfigurations,resourceNames=capstan-mutating-webhook-configuration,verbs=get;list;watch;update
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingwebhookconfigurations,resourceNames=capstan-validating-webhook-configuration,verbs=get;list;watch;update

// Names of Capstan's webhook configurations as config/webhook renders them;
// the ClusterRole may update these and no others.
const (
	DefaultMutatingWebhookConfiguration   = "capstan-mutating-webhook-configuration"
	DefaultValidatingWebhookConfiguration = "capstan-validating-webhook-configuration"
)

// BundleSource is where the mesh's current trust bundle comes from (the
// certificate provider in use).
type BundleSource interface {
	TrustBundle(ctx context.Context) ([]byte, error)
}

// Injector keeps the caBundle of Capstan's own webhook
// configurations equal to the mesh's trust bundle, when the manager serves
// its webhooks with a certificate from the mesh CA (--webhook-certs=mesh):
// the API server then verifies the webhook server against the mesh root.
// Only the configurations named in Mutating and Validating are touched.
type Injector struct {
	Client client.Client
	Bundle BundleSource
	// Mutating and Validating name the configurations to keep.
	Mutating, Validating string

	changes chan event.GenericEvent
}

// BundleChanged re-checks both configurations. It does not block.
func (c *Injector) BundleChanged() {
	select {
	case c.changes <- event.GenericEvent{Object: &admissionregistrationv1.MutatingWebhookConfiguration{}}:
	default:
	}
}

// SetupWithManager registers the injector.
func (c *Injector) SetupWithManager(mgr ctrl.Manager) error {
	c.changes = make(chan event.GenericEvent, 1)
	named := func(name string) builder.Predicates {
		return builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool { return o.GetName() == name }))
	}
	both := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: c.Mutating}}}
	})
	err := ctrl.NewControllerManagedBy(mgr).
		Named("cabundle").
		For(&admissionregistrationv1.MutatingWebhookConfiguration{}, named(c.Mutating)).
		Watches(&admissionregistrationv1.ValidatingWebhookConfiguration{}, both, named(c.Validating)).
		WatchesRawSource(source.Channel(c.changes, both)).
		Complete(c)
	if err != nil {
		return fmt.Errorf("setting up the CA bundle injector: %w", err)
	}
	return nil
}

// Reconcile sets the bundle on every webhook of both configurations where
// it differs. Every request stands for both configurations.
func (c *Injector) Reconcile(ctx context.Context, _ ctrl.Request) (ctrl.Result, error) {
	bundle, err := c.Bundle.TrustBundle(ctx)
	if err != nil {
		ctrl.LoggerFrom(ctx).V(1).Info("no trust bundle for the webhook configurations yet", "error", err.Error())
		return ctrl.Result{RequeueAfter: 2 * time.Second}, nil
	}
	mutating := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := c.inject(ctx, c.Mutating, mutating, bundle, func() []*admissionregistrationv1.WebhookClientConfig {
		out := make([]*admissionregistrationv1.WebhookClientConfig, len(mutating.Webhooks))
		for i := range mutating.Webhooks {
			out[i] = &mutating.Webhooks[i].ClientConfig
		}
		return out
	}); err != nil {
		return ctrl.Result{}, err
	}
	validating := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	return ctrl.Result{}, c.inject(ctx, c.Validating, validating, bundle, func() []*admissionregistrationv1.WebhookClientConfig {
		out := make([]*admissionregistrationv1.WebhookClientConfig, len(validating.Webhooks))
		for i := range validating.Webhooks {
			out[i] = &validating.Webhooks[i].ClientConfig
		}
		return out
	})
}

// inject reads the configuration name into obj and, when a webhook's
// caBundle differs from bundle, sets them all and updates it. A
// configuration that does not exist is left for its creation event.
func (c *Injector) inject(ctx context.Context, name string, obj client.Object, bundle []byte,
	configs func() []*admissionregistrationv1.WebhookClientConfig) error {
	if err := c.Client.Get(ctx, client.ObjectKey{Name: name}, obj); err != nil {
		return client.IgnoreNotFound(err)
	}
	changed := false
	for _, cc := range configs() {
		if !bytes.Equal(cc.CABundle, bundle) {
			cc.CABundle, changed = bytes.Clone(bundle), true
		}
	}
	if !changed {
		return nil
	}
	if err := c.Client.Update(ctx, obj); err != nil {
		return fmt.Errorf("setting the caBundle of %s: %w", name, err)
	}
	return nil
}
