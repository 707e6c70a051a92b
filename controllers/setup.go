// Package controllers holds Capstan's reconcilers. They are the only code
// that talks to the Kubernetes API; they import no Envoy types.
package controllers

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// Inputs read by the mesh model (wired by later reconcilers), and Events:
// +kubebuilder:rbac:groups="",resources=services;pods;namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// EventSource is the reporting controller name on Capstan's Events.
const EventSource = "capstan"

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

// SetupWithManager registers every status reconciler with mgr.
func SetupWithManager(mgr ctrl.Manager) error {
	rec := mgr.GetEventRecorder(EventSource)
	c := mgr.GetClient()
	setups := []struct {
		name  string
		setup func(ctrl.Manager) error
	}{
		{"mesh", NewMeshReconciler(c, rec).SetupWithManager},
		{"meshroute", NewMeshRouteReconciler(c, rec).SetupWithManager},
		{"destinationpolicy", NewDestinationPolicyReconciler(c, rec).SetupWithManager},
		{"peerauthentication", NewPeerAuthenticationReconciler(c, rec).SetupWithManager},
		{"uninjected", (&UninjectedReconciler{Client: c, Recorder: rec}).SetupWithManager},
	}
	for _, s := range setups {
		if err := s.setup(mgr); err != nil {
			return fmt.Errorf("setting up the %s controller: %w", s.name, err)
		}
	}
	return nil
}
