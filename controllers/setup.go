// Package controllers holds the status reconcilers of Capstan's objects:
// the conditions an object's own spec decides, the xDS pipeline's verdict
// (through the StatusStore), and the Mesh's one status writer, with the
// validation they apply. The other reconcilers live in its subpackages, one
// concern each (certificates, rootca, cabundle, uninjected, inputs). Like
// them it talks to the Kubernetes API and never reaches Envoy's types.
package controllers

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/controllers/uninjected"
)

// Inputs read by the mesh model (wired by later reconcilers), and Events:
// +kubebuilder:rbac:groups="",resources=services;pods;namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// EventSource is the reporting controller name on Capstan's Events.
const EventSource = meshv1alpha1.EventSource

// NewScheme returns a scheme with the client-go kinds and Capstan's API.
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("adding client-go kinds: %w", err)
	}
	if err := meshv1alpha1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("adding %s kinds: %w", meshv1alpha1.GroupVersion, err)
	}
	return s, nil
}

// SetupWithManager registers every status reconciler with mgr, the Mesh's
// sharing one status writer.
func SetupWithManager(mgr ctrl.Manager) error {
	rec := mgr.GetEventRecorder(EventSource)
	c := mgr.GetClient()
	meshStatus := NewMeshStatusWriter(mgr)
	setups := []struct {
		name  string
		setup func(ctrl.Manager) error
	}{
		{"mesh", (&MeshStatusReconciler{Client: c, Status: meshStatus}).SetupWithManager},
		{"meshroute", NewMeshRouteReconciler(c, rec).SetupWithManager},
		{"destinationpolicy", NewDestinationPolicyReconciler(c, rec).SetupWithManager},
		{"peerauthentication", NewPeerAuthenticationReconciler(c, rec).SetupWithManager},
		{"uninjected", (&uninjected.Reconciler{Client: c, Recorder: rec, Status: meshStatus}).SetupWithManager},
	}
	for _, s := range setups {
		if err := s.setup(mgr); err != nil {
			return fmt.Errorf("setting up the %s controller: %w", s.name, err)
		}
	}
	return nil
}
