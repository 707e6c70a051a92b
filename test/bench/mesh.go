// Package bench is the scale harness of issue #14: a synthetic mesh pushed
// through the real runner into the real xDS server on loopback, and N
// simulated sidecars (real gRPC ADS streams, in a separate process, see
// package test/bench/sidecars) that subscribe and ACK like Envoy. It
// measures convergence, bytes, CPU and memory of the control plane.
package bench

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/xds/ir"
	"github.com/capstanmesh/capstan/xds/translate"
)

// Mesh sizes a synthetic mesh: Services services of Endpoints endpoints each
// (one pod per endpoint, labelled version v1 or v2 alternately), spread over
// Namespaces namespaces; Proxies of those pods are injected (spread over the
// services; client pods are added when there are more proxies than
// endpoints); the first Routes services have a DestinationPolicy with
// subsets v1 and v2 and a MeshRoute splitting 90/10 between them.
//
// Scoped false (the harness's default, comparable with the numbers in
// docs/benchmarks.md from before scoping) sets the Mesh's spec.scoping.mode
// to MeshWide: every sidecar gets every service. Scoped true keeps the
// default, Scoped: each sidecar gets its namespace's services, and each
// client pod declares the first Dependencies services (capstan.dev/dependencies).
type Mesh struct {
	Services     int
	Endpoints    int
	Namespaces   int
	Proxies      int
	Routes       int
	Scoped       bool
	Dependencies int
}

// Initial weights of every MeshRoute and the weights of the weight change;
// the changed pair occurs nowhere else, so a proxy holding it has the change.
const (
	weightV1, weightV2               = 90, 10
	changedWeightV1, changedWeightV2 = 73, 27
)

const (
	servicePort = 80
	targetPort  = 8080
)

// svc names service i.
func (m Mesh) svc(i int) (name, namespace string) {
	return "svc-" + strconv.Itoa(i), "ns-" + strconv.Itoa(i%max(m.Namespaces, 1))
}

// endpointIP is the address of endpoint j of service i (10.1.0.1 upwards).
func (m Mesh) endpointIP(i, j int) string { return indexIP(10, 1, i*m.Endpoints+j+1) }

// indexIP spreads index g over the last two octets of a.b.0.0/16 and the
// next b's.
func indexIP(a, b, g int) string {
	return fmt.Sprintf("%d.%d.%d.%d", a, b+g/65536, (g/256)%256, g%256)
}

// Inputs builds the translation inputs of the mesh, sorted as the
// controllers sort them.
func (m Mesh) Inputs() *translate.Inputs {
	in := &translate.Inputs{Mesh: m.meshObject()}
	injected := m.injectedPods()
	for i := range m.Services {
		in.Services = append(in.Services, m.service(i))
		in.EndpointSlices = append(in.EndpointSlices, m.endpointSlice(i))
		for j := range m.Endpoints {
			in.Pods = append(in.Pods, m.pod(i, j, injected[[2]int{i, j}]))
		}
	}
	for k := range m.Proxies - len(injected) {
		in.Pods = append(in.Pods, m.clientPod(k))
	}
	for i := range min(m.Routes, m.Services) {
		in.DestinationPolicies = append(in.DestinationPolicies, m.policy(i))
		in.MeshRoutes = append(in.MeshRoutes, m.route(i, weightV1, weightV2))
	}
	sortInputs(in)
	return in
}

// injectedPods picks min(Proxies, Services×Endpoints) endpoint pods, first
// endpoint 0 of every service, then endpoint 1, and so on.
func (m Mesh) injectedPods() map[[2]int]bool {
	out := map[[2]int]bool{}
	for g := 0; g < m.Proxies && g < m.Services*m.Endpoints; g++ {
		out[[2]int{g % m.Services, g / m.Services}] = true
	}
	return out
}

func (m Mesh) service(i int) corev1.Service {
	name, ns := m.svc(i)
	ip := indexIP(10, 96, i+1)
	return corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{
			ClusterIP: ip, ClusterIPs: []string{ip},
			Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{
				Name: "http", Port: servicePort, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(targetPort),
			}},
		},
	}
}

func (m Mesh) endpointSlice(i int) discoveryv1.EndpointSlice {
	name, ns := m.svc(i)
	ready := true
	slice := discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: name + "-x", Namespace: ns,
			Labels: map[string]string{discoveryv1.LabelServiceName: name},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(targetPort))}},
	}
	for j := range m.Endpoints {
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{m.endpointIP(i, j)},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: podName(name, j)},
		})
	}
	return slice
}

func podName(svc string, j int) string { return svc + "-" + strconv.Itoa(j) }

func (m Mesh) pod(i, j int, injected bool) corev1.Pod {
	name, ns := m.svc(i)
	pod := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: podName(name, j), Namespace: ns,
			Labels: map[string]string{"app": name, "version": "v" + strconv.Itoa(1+j%2)},
		},
		Spec: corev1.PodSpec{
			ServiceAccountName: name,
			Containers:         []corev1.Container{{Name: "app", Ports: []corev1.ContainerPort{{ContainerPort: targetPort}}}},
		},
		Status: corev1.PodStatus{PodIP: m.endpointIP(i, j)},
	}
	if injected {
		pod.Annotations = m.injectedAnnotations()
	}
	return pod
}

// injectedAnnotations are an injected pod's: the injector's status, and
// when scoped its dependencies.
func (m Mesh) injectedAnnotations() map[string]string {
	a := map[string]string{meshv1alpha1.AnnotationStatus: "injected"}
	if m.Scoped {
		a[meshv1alpha1.AnnotationDependencies] = m.dependencies()
	}
	return a
}

// declared is how many services a scoped pod declares: Dependencies, at
// least 1 (service 0 is the one the endpoint and weight changes touch).
func (m Mesh) declared() int { return min(max(m.Dependencies, 1), m.Services) }

// meshObject is the "default" Mesh: scoping off unless m.Scoped.
func (m Mesh) meshObject() *meshv1alpha1.Mesh {
	mode := meshv1alpha1.ScopingMeshWide
	if m.Scoped {
		mode = meshv1alpha1.ScopingScoped
	}
	return &meshv1alpha1.Mesh{
		ObjectMeta: metav1.ObjectMeta{Name: meshv1alpha1.MeshName},
		Spec:       meshv1alpha1.MeshSpec{Scoping: meshv1alpha1.MeshScoping{Mode: mode}},
	}
}

// dependencies is the capstan.dev/dependencies value of scoped pods: the
// first declared() services, and service Services, which NewService adds
// (a dependency may name a Service before it exists), so that every proxy
// is affected by each of the three changes.
func (m Mesh) dependencies() string {
	deps := make([]string, 0, m.declared()+1)
	add := func(i int) {
		name, ns := m.svc(i)
		deps = append(deps, name+"."+ns)
	}
	for i := range m.declared() {
		add(i)
	}
	add(m.Services)
	return strings.Join(deps, ",")
}

// clientPod is an injected pod that backs no service.
func (m Mesh) clientPod(k int) corev1.Pod {
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "client-" + strconv.Itoa(k), Namespace: "clients",
			Labels:      map[string]string{"app": "client"},
			Annotations: m.injectedAnnotations(),
		},
		Spec:   corev1.PodSpec{ServiceAccountName: "client", Containers: []corev1.Container{{Name: "app"}}},
		Status: corev1.PodStatus{PodIP: indexIP(10, 200, k+1)},
	}
}

func (m Mesh) policy(i int) meshv1alpha1.DestinationPolicy {
	name, ns := m.svc(i)
	return meshv1alpha1.DestinationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Generation: 1},
		Spec: meshv1alpha1.DestinationPolicySpec{
			Host: name,
			Subsets: []meshv1alpha1.Subset{
				{Name: "v1", Labels: map[string]string{"version": "v1"}},
				{Name: "v2", Labels: map[string]string{"version": "v2"}},
			},
		},
	}
}

func (m Mesh) route(i int, w1, w2 int32) meshv1alpha1.MeshRoute {
	name, ns := m.svc(i)
	return meshv1alpha1.MeshRoute{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Generation: 1},
		Spec: meshv1alpha1.MeshRouteSpec{
			Hosts: []string{name},
			HTTP: []meshv1alpha1.HTTPRule{{
				Name: "split",
				Route: []meshv1alpha1.Destination{
					{Host: name, Subset: "v1", Weight: ptr(w1)},
					{Host: name, Subset: "v2", Weight: ptr(w2)},
				},
			}},
		},
	}
}

// NodeIDs are the node IDs of the mesh's sidecars, in the order of Inputs' pods.
func NodeIDs(in *translate.Inputs) []string {
	var out []string
	for i := range in.Pods {
		p := &in.Pods[i]
		if _, ok := p.Annotations[meshv1alpha1.AnnotationStatus]; ok {
			out = append(out, ir.SidecarNodeID(p.Status.PodIP, p.Name, p.Namespace))
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }
