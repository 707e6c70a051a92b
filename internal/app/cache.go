package app

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// NameScopedCache returns the manager's cache settings for the kinds its
// ClusterRole grants by name only (resourceNames): ConfigMaps (the root CA,
// meshv1alpha1.RootCAConfigMapName) and the two webhook configurations named
// mutating and validating. The API server authorizes a list or watch against
// resourceNames only when it selects that one name with a metadata.name
// field selector, so the informers of these kinds carry one; without it
// they would be refused and never sync.
func NameScopedCache(mutating, validating string) map[client.Object]cache.ByObject {
	named := func(name string) cache.ByObject {
		return cache.ByObject{Field: fields.OneTermEqualSelector("metadata.name", name)}
	}
	return map[client.Object]cache.ByObject{
		&corev1.ConfigMap{}: named(meshv1alpha1.RootCAConfigMapName),
		&admissionregistrationv1.MutatingWebhookConfiguration{}:   named(mutating),
		&admissionregistrationv1.ValidatingWebhookConfiguration{}: named(validating),
	}
}
