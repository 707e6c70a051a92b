// Package translate turns API objects into the mesh model (ir.Mesh) and a
// status per object. It is a pure function: no I/O, no clients, and it never
// mutates its inputs.
package translate

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// Inputs is everything translation reads, gathered from informer caches,
// deep-copied and sorted by namespace/name by the controllers.
type Inputs struct {
	// Mesh is the "default" Mesh; nil means every default applies.
	Mesh                *meshv1alpha1.Mesh                `json:"mesh,omitempty"`
	MeshRoutes          []meshv1alpha1.MeshRoute          `json:"meshRoutes,omitempty"`
	DestinationPolicies []meshv1alpha1.DestinationPolicy  `json:"destinationPolicies,omitempty"`
	PeerAuthentications []meshv1alpha1.PeerAuthentication `json:"peerAuthentications,omitempty"`
	Services            []corev1.Service                  `json:"services,omitempty"`
	EndpointSlices      []discoveryv1.EndpointSlice       `json:"endpointSlices,omitempty"`
	Pods                []corev1.Pod                      `json:"pods,omitempty"`
	Namespaces          []corev1.Namespace                `json:"namespaces,omitempty"`
}

// DeepCopy returns a copy of in that shares no memory with it.
func (in *Inputs) DeepCopy() *Inputs {
	if in == nil {
		return nil
	}
	return &Inputs{
		Mesh:                in.Mesh.DeepCopy(),
		MeshRoutes:          deepCopyAll(in.MeshRoutes),
		DestinationPolicies: deepCopyAll(in.DestinationPolicies),
		PeerAuthentications: deepCopyAll(in.PeerAuthentications),
		Services:            deepCopyAll(in.Services),
		EndpointSlices:      deepCopyAll(in.EndpointSlices),
		Pods:                deepCopyAll(in.Pods),
		Namespaces:          deepCopyAll(in.Namespaces),
	}
}

// deepCopyAll copies a slice of API objects with their generated DeepCopyInto.
func deepCopyAll[T any, P interface {
	*T
	DeepCopyInto(*T)
}](items []T) []T {
	if items == nil {
		return nil
	}
	out := make([]T, len(items))
	for i := range items {
		P(&items[i]).DeepCopyInto(&out[i])
	}
	return out
}
