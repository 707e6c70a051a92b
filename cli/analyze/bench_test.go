package analyze

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// benchInputs is a cluster of n services of 10 pods each in 10 enabled
// namespaces, a STRICT policy per namespace, a weighted route and a
// DestinationPolicy per service, and n/10 callers without a sidecar in a
// plain namespace, each naming one service.
func benchInputs(n int) *Inputs {
	in := &Inputs{Namespaces: []corev1.Namespace{ns("plain", false)}}
	for i := range 10 {
		name := fmt.Sprintf("ns%d", i)
		in.Namespaces = append(in.Namespaces, ns(name, true))
		in.PeerAuthentications = append(in.PeerAuthentications, strictPA(name, "strict", nil))
	}
	for i := range n {
		namespace, name := fmt.Sprintf("ns%d", i%10), fmt.Sprintf("svc%d", i)
		in.Services = append(in.Services, svc(namespace, name, corev1.ServiceTypeClusterIP, app(name)))
		for j := range 10 {
			in.Pods = append(in.Pods, pod(namespace, fmt.Sprintf("%s-%d", name, j), true, appVersion(name, fmt.Sprintf("v%d", j%2+1))))
		}
		in.MeshRoutes = append(in.MeshRoutes, route(namespace, name, []string{name}, dest(name, "v1", 90), dest(name, "v2", 10)))
		in.DestinationPolicies = append(in.DestinationPolicies, policy(namespace, name, name, map[string]string{"v1": "v1", "v2": "v2"}))
		if i%10 == 0 {
			in.Pods = append(in.Pods, pod("plain", "caller-"+name, false, nil, "http://"+name+"."+namespace+"/"))
		}
	}
	in.Mesh = &meshv1alpha1.Mesh{}
	return in
}

// BenchmarkRun: every analyzer on a cluster of 1000 services and 10,000
// pods (figures in docs/benchmarks.md).
func BenchmarkRun(b *testing.B) {
	in := benchInputs(1000)
	b.ReportAllocs()
	var findings int
	for b.Loop() {
		findings = len(Run(in))
	}
	b.ReportMetric(float64(findings), "findings")
}
