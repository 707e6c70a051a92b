package validation

import (
	"k8s.io/apimachinery/pkg/util/validation/field"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// PeerAuthentication checks a PeerAuthentication: its selector's labels must
// be labels a pod can carry (a selector that no pod can match is a mistake).
func PeerAuthentication(pa *meshv1alpha1.PeerAuthentication) field.ErrorList {
	if pa.Spec.Selector == nil {
		return nil
	}
	return labels(pa.Spec.Selector.MatchLabels, field.NewPath("spec", "selector", "matchLabels"))
}
