package translate

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/capstanmesh/capstan/api/annotations"
	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/xds/ir"
)

// Kinds of the Kubernetes objects named in notices.
const (
	KindNamespace = "Namespace"
	KindPod       = "Pod"
	KindService   = "Service"
)

// Notice is something translation left out of the model because of an
// object that has no status of its own (a Namespace, a Pod, a Service);
// the runner logs each one.
type Notice struct {
	Ref     ir.ObjectRef `json:"ref"`
	Message string       `json:"message"`
}

func (t *translator) notice(ref ir.ObjectRef, format string, args ...any) {
	t.notices = append(t.notices, Notice{Ref: ref, Message: fmt.Sprintf(format, args...)})
}

func sortNotices(n []Notice) {
	slices.SortStableFunc(n, func(a, b Notice) int { return compareRefs(a.Ref, b.Ref) })
}

// namespaceDependencies parses the capstan.dev/dependencies annotation of
// every namespace, reporting invalid entries (namespaces are not admitted
// by Capstan's webhooks).
func (t *translator) namespaceDependencies() map[string]annotations.Dependencies {
	out := map[string]annotations.Dependencies{}
	for i := range t.in.Namespaces {
		ns := &t.in.Namespaces[i]
		v, ok := ns.Annotations[meshv1alpha1.AnnotationDependencies]
		if !ok {
			continue
		}
		deps, errs := annotations.ParseDependencies(v)
		for _, err := range errs {
			t.notice(ir.ObjectRef{Kind: KindNamespace, Name: ns.Name}, "%v; entry ignored", err)
		}
		out[ns.Name] = deps
	}
	return out
}

// routeHosts are, by namespace, the FQDNs of the Services the namespace's
// MeshRoutes name in spec.hosts, sorted.
func (t *translator) routeHosts() map[string][]string {
	out := map[string][]string{}
	for i := range t.in.MeshRoutes {
		mr := &t.in.MeshRoutes[i]
		for _, h := range mr.Spec.Hosts {
			if svc, _ := t.lookupHost(h, mr.Namespace); svc != nil {
				out[mr.Namespace] = append(out[mr.Namespace], svc.FQDN)
			}
		}
	}
	for ns, hosts := range out {
		slices.Sort(hosts)
		out[ns] = slices.Compact(hosts)
	}
	return out
}

// scope is the part of the mesh a pod's sidecar gets config for: nil when
// the mesh is not scoped or a dependency is "*"; otherwise the pod's
// namespace, the namespaces and hosts its pod and namespace declare, and the
// hosts its namespace's MeshRoutes name.
func (t *translator) scope(pod *corev1.Pod) *ir.Scope {
	if !t.scoped {
		return nil
	}
	deps := t.nsDeps[pod.Namespace]
	if v, ok := pod.Annotations[meshv1alpha1.AnnotationDependencies]; ok {
		own, errs := annotations.ParseDependencies(v)
		for _, err := range errs {
			t.notice(ir.ObjectRef{Kind: KindPod, Namespace: pod.Namespace, Name: pod.Name}, "%v; entry ignored", err)
		}
		deps = deps.Merge(own)
	}
	if deps.All {
		return nil
	}
	// Concat: deps may be the namespace's, shared by its pods.
	s := &ir.Scope{Namespaces: slices.Concat(deps.Namespaces, []string{pod.Namespace})}
	for _, h := range deps.Hosts {
		s.Hosts = append(s.Hosts, ir.ResolveHost(h, pod.Namespace))
	}
	s.Hosts = append(s.Hosts, t.routeHostsByNS[pod.Namespace]...)
	slices.Sort(s.Namespaces)
	s.Namespaces = slices.Compact(s.Namespaces)
	slices.Sort(s.Hosts)
	s.Hosts = slices.Compact(s.Hosts)
	return s
}

// applyClusterBound keeps each namespace's Services within
// maxClustersPerNamespace outbound clusters (one per port, plus one per port
// and subset), services in FQDN order: the subsets of a policy that would
// cross the bound are left out and the policy is not accepted; a Service
// whose ports alone would cross it is left out of the model (its callers go
// through the passthrough cluster). Other namespaces are never affected.
func (t *translator) applyClusterBound() {
	used := map[string]int{}
	kept := t.services[:0:0]
	for _, e := range t.services {
		svc := e.ir
		ports := len(svc.Ports)
		if used[svc.Namespace]+ports > t.maxClusters {
			t.notice(ir.ObjectRef{Kind: KindService, Namespace: svc.Namespace, Name: svc.Name},
				"its %d ports would take namespace %s past Mesh spec.scoping.maxClustersPerNamespace (%d outbound clusters, %d used); "+
					"left out of the mesh config, callers reach it through the passthrough cluster", ports, svc.Namespace, t.maxClusters, used[svc.Namespace])
			t.boundProblem(svc, "spec.host: Service %s/%s is left out of the mesh config: its %d ports would take namespace %s past "+
				"Mesh spec.scoping.maxClustersPerNamespace (%d)", svc.Namespace, svc.Name, ports, svc.Namespace, t.maxClusters)
			delete(t.byFQDN, svc.FQDN)
			continue
		}
		used[svc.Namespace] += ports
		kept = append(kept, e)
		if subsets := ports * len(svc.Subsets); subsets > 0 && used[svc.Namespace]+subsets > t.maxClusters {
			t.dropSubsets(svc, subsets, used[svc.Namespace])
			continue
		}
		used[svc.Namespace] += ports * len(svc.Subsets)
	}
	t.services = kept
}

func (t *translator) dropSubsets(svc *ir.Service, clusters, used int) {
	t.boundProblem(svc, "spec.subsets: %d subsets × %d ports of Service %s/%s are %d outbound clusters, which would take namespace %s past "+
		"Mesh spec.scoping.maxClustersPerNamespace (%d, %d used); subsets left out",
		len(svc.Subsets), len(svc.Ports), svc.Namespace, svc.Name, clusters, svc.Namespace, t.maxClusters, used)
	svc.Subsets = nil
}

// boundProblem makes the DestinationPolicy of svc, if any, not accepted
// with reason TooManyClusters.
func (t *translator) boundProblem(svc *ir.Service, format string, args ...any) {
	if svc.PolicySource == nil {
		return
	}
	if st := t.statuses.byRef[*svc.PolicySource]; st != nil {
		st.invalid = append(st.invalid, problem{meshv1alpha1.ReasonTooManyClusters, fmt.Sprintf(format, args...)})
	}
}

// maxClustersPerNamespace is the Mesh's bound, or its default.
func maxClustersPerNamespace(spec *meshv1alpha1.MeshSpec) int {
	if spec == nil || spec.Scoping.MaxClustersPerNamespace == nil {
		return meshv1alpha1.DefaultMaxClustersPerNamespace
	}
	return max(1, int(*spec.Scoping.MaxClustersPerNamespace))
}
