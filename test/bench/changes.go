package bench

import (
	"cmp"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/xds/translate"
)

// sortInputs sorts every list by namespace/name, as the controllers do.
func sortInputs(in *translate.Inputs) {
	byKey := func(ns1, n1, ns2, n2 string) int { return cmp.Or(cmp.Compare(ns1, ns2), cmp.Compare(n1, n2)) }
	slices.SortFunc(in.Services, func(a, b corev1.Service) int { return byKey(a.Namespace, a.Name, b.Namespace, b.Name) })
	slices.SortFunc(in.EndpointSlices, func(a, b discoveryv1.EndpointSlice) int {
		return byKey(a.Namespace, a.Name, b.Namespace, b.Name)
	})
	slices.SortFunc(in.Pods, func(a, b corev1.Pod) int { return byKey(a.Namespace, a.Name, b.Namespace, b.Name) })
	slices.SortFunc(in.MeshRoutes, func(a, b meshv1alpha1.MeshRoute) int { return byKey(a.Namespace, a.Name, b.Namespace, b.Name) })
	slices.SortFunc(in.DestinationPolicies, func(a, b meshv1alpha1.DestinationPolicy) int {
		return byKey(a.Namespace, a.Name, b.Namespace, b.Name)
	})
}

// Change is one change to the mesh and what a proxy holds once it has it.
type Change struct {
	// Name is the change's name in reports.
	Name string
	// Inputs are the inputs after the change.
	Inputs *translate.Inputs
	// Expect is what the sidecars wait for.
	Expect Expectation
}

// Expectation says when a proxy holds a change (see sidecars.Expect).
type Expectation struct {
	// NewIP, when set: the proxy holds an endpoint assignment with this
	// address. OldIP, when set, narrows the affected proxies to those that
	// hold an assignment with OldIP when the change is made; empty means
	// every proxy is affected.
	NewIP, OldIP string
	// Weights, when set: the proxy holds a route that splits by exactly
	// these weights (every proxy holding routes is affected).
	Weights []uint32
}

// EndpointChange adds an endpoint to service 0 (a new, un-injected pod:
// a scale-up), so that no proxy's node ID changes; the proxies holding an
// assignment with service 0's first endpoint are affected.
func (m Mesh) EndpointChange(in *translate.Inputs) Change {
	out := in.DeepCopy()
	name, ns := m.svc(0)
	newIP := indexIP(10, 250, 1)
	ready := true
	for i := range out.EndpointSlices {
		s := &out.EndpointSlices[i]
		if s.Namespace == ns && s.Labels[discoveryv1.LabelServiceName] == name {
			s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
				Addresses:  []string{newIP},
				Conditions: discoveryv1.EndpointConditions{Ready: &ready},
				TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: podName(name, m.Endpoints)},
			})
		}
	}
	pod := m.pod(0, m.Endpoints, false)
	pod.Status.PodIP = newIP
	out.Pods = append(out.Pods, pod)
	sortInputs(out)
	return Change{Name: "endpoint", Inputs: out, Expect: Expectation{NewIP: newIP, OldIP: m.endpointIP(0, 0)}}
}

// WeightChange changes the split of the first MeshRoute.
func (m Mesh) WeightChange(in *translate.Inputs) Change {
	out := in.DeepCopy()
	name, ns := m.svc(0)
	for i := range out.MeshRoutes {
		if r := &out.MeshRoutes[i]; r.Namespace == ns && r.Name == name {
			*r = m.route(0, changedWeightV1, changedWeightV2)
			r.Generation = 2
		}
	}
	return Change{Name: "weight", Inputs: out, Expect: Expectation{Weights: []uint32{changedWeightV1, changedWeightV2}}}
}

// NewService adds one service (index Services) with its endpoints and
// un-injected pods.
func (m Mesh) NewService(in *translate.Inputs) Change {
	out := in.DeepCopy()
	i := m.Services
	out.Services = append(out.Services, m.service(i))
	out.EndpointSlices = append(out.EndpointSlices, m.endpointSlice(i))
	for j := range m.Endpoints {
		out.Pods = append(out.Pods, m.pod(i, j, false))
	}
	sortInputs(out)
	return Change{Name: "service", Inputs: out, Expect: Expectation{NewIP: m.endpointIP(i, 0)}}
}

// ServiceIPs are the endpoint addresses of every service (when scoped, of
// every declared service), for checking that a proxy holds an assignment
// of each.
func (m Mesh) ServiceIPs() [][]string {
	n := m.Services
	if m.Scoped {
		n = m.declared()
	}
	out := make([][]string, n)
	for i := range out {
		for j := range m.Endpoints {
			out[i] = append(out[i], m.endpointIP(i, j))
		}
	}
	return out
}

// RouteWeights are the splits every proxy should hold, one per MeshRoute
// (when scoped, per MeshRoute of a declared service).
func (m Mesh) RouteWeights() [][]uint32 {
	n := min(m.Routes, m.Services)
	if m.Scoped {
		n = min(n, m.declared())
	}
	out := make([][]uint32, n)
	for i := range out {
		out[i] = []uint32{weightV1, weightV2}
	}
	return out
}
