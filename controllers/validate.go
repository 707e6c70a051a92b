package controllers

import (
	"k8s.io/apimachinery/pkg/util/validation/field"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/api/validation"
)

// The status reconcilers' checks of an object's own spec. The rules live in
// api/validation, which admission and the translator apply too, so that the
// three agree; these names are the reconcilers' entry points.

// ValidateMeshName reports a Mesh not named "default"; Capstan reads only that one.
func ValidateMeshName(m *meshv1alpha1.Mesh) field.ErrorList { return validation.MeshName(m) }

// ValidateMesh checks a Mesh's spec.
func ValidateMesh(m *meshv1alpha1.Mesh) field.ErrorList { return validation.Mesh(m) }

// ValidateMeshRoute checks a MeshRoute's rules.
func ValidateMeshRoute(mr *meshv1alpha1.MeshRoute) field.ErrorList { return validation.MeshRoute(mr) }

// ValidateDestinationPolicy checks a DestinationPolicy.
func ValidateDestinationPolicy(dp *meshv1alpha1.DestinationPolicy) field.ErrorList {
	return validation.DestinationPolicy(dp)
}

// ValidatePeerAuthentication checks a PeerAuthentication's selector.
func ValidatePeerAuthentication(pa *meshv1alpha1.PeerAuthentication) field.ErrorList {
	return validation.PeerAuthentication(pa)
}
