package analyze

import (
	"cmp"
	"maps"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/controllers/uninjected"
	"github.com/capstanmesh/capstan/webhook/inject"
	"github.com/capstanmesh/capstan/xds/ir"
)

// Kinds of the objects findings name.
const (
	KindPod                = "Pod"
	KindReplicaSet         = "ReplicaSet"
	KindJob                = "Job"
	KindCronJob            = "CronJob"
	KindService            = "Service"
	KindIngress            = "Ingress"
	KindNamespace          = "Namespace"
	KindMesh               = "Mesh"
	KindMeshRoute          = "MeshRoute"
	KindDestinationPolicy  = "DestinationPolicy"
	KindPeerAuthentication = "PeerAuthentication"
)

// workload is a set of pods with one owner (or one bare pod): the running
// pods when there are any, else what its template would create.
type workload struct {
	ref    ObjectRef
	labels map[string]string
	spec   *corev1.PodSpec
	// meshed says every pod has a sidecar that captures its traffic (or,
	// from a template, would get one).
	meshed bool
	// why says why the workload is not meshed.
	why string
	// tokens are the host-like words of its pod spec (specTokens), computed once.
	tokens []string
	// pods are its running pods, as "namespace/name".
	pods []string
}

// world indexes the inputs for the analyzers.
type world struct {
	in         *Inputs
	namespaces map[string]*corev1.Namespace
	// services by FQDN.
	services  map[string]*corev1.Service
	workloads []*workload
	// byNamespace holds the workloads and the Services of each namespace;
	// unmeshed the workloads without a sidecar.
	byNamespace         map[string][]*workload
	servicesByNamespace map[string][]*corev1.Service
	unmeshed            []*workload
	// policies holds the DestinationPolicies by host FQDN.
	policies map[string][]*meshv1alpha1.DestinationPolicy
}

func newWorld(in *Inputs) *world {
	w := &world{in: in, namespaces: map[string]*corev1.Namespace{}, services: map[string]*corev1.Service{},
		byNamespace: map[string][]*workload{}, servicesByNamespace: map[string][]*corev1.Service{}}
	for i := range in.Namespaces {
		w.namespaces[in.Namespaces[i].Name] = &in.Namespaces[i]
	}
	for i := range in.Services {
		s := &in.Services[i]
		w.services[ir.ServiceFQDN(s.Name, s.Namespace)] = s
		w.servicesByNamespace[s.Namespace] = append(w.servicesByNamespace[s.Namespace], s)
	}
	w.policies = map[string][]*meshv1alpha1.DestinationPolicy{}
	for i := range in.DestinationPolicies {
		dp := &in.DestinationPolicies[i]
		fqdn := ir.ResolveHost(dp.Spec.Host, dp.Namespace)
		w.policies[fqdn] = append(w.policies[fqdn], dp)
	}
	w.workloads = buildWorkloads(in, w.namespaces)
	for _, wl := range w.workloads {
		w.byNamespace[wl.ref.Namespace] = append(w.byNamespace[wl.ref.Namespace], wl)
		if !wl.meshed {
			w.unmeshed = append(w.unmeshed, wl)
		}
	}
	return w
}

// buildWorkloads groups the pods by owner, then adds the workloads of the
// templates that have no pod.
func buildWorkloads(in *Inputs, namespaces map[string]*corev1.Namespace) []*workload {
	byRef := map[ObjectRef]*workload{}
	rs := replicaSetLookup(in.ReplicaSets)
	jobOwners := jobOwnerIndex(in)
	for i := range in.Pods {
		pod := &in.Pods[i]
		if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		ref := podOwner(pod, rs, jobOwners)
		meshed, why := podMeshed(pod)
		if wl, ok := byRef[ref]; ok {
			if wl.meshed && !meshed {
				wl.meshed, wl.why = false, why
			}
			wl.pods = append(wl.pods, pod.Namespace+"/"+pod.Name)
			continue
		}
		byRef[ref] = &workload{ref: ref, labels: pod.Labels, spec: &pod.Spec, meshed: meshed, why: why, pods: []string{pod.Namespace + "/" + pod.Name}}
	}
	for _, t := range templates(in) {
		if _, ok := byRef[t.ref]; ok {
			continue
		}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: t.ref.Namespace, Labels: t.tmpl.Labels,
			Annotations: t.tmpl.Annotations}, Spec: t.tmpl.Spec}
		meshed, why := templateMeshed(pod, namespaces[t.ref.Namespace], in.operatorNamespace())
		byRef[t.ref] = &workload{ref: t.ref, labels: t.tmpl.Labels, spec: &t.tmpl.Spec, meshed: meshed, why: why}
	}
	out := slices.Collect(maps.Values(byRef))
	for _, wl := range out {
		if !wl.meshed {
			wl.tokens = specTokens(wl.spec)
		}
	}
	slices.SortFunc(out, func(a, b *workload) int { return compareRefs(a.ref, b.ref) })
	return out
}

func compareRefs(a, b ObjectRef) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
}

// podMeshed says whether pod's traffic goes through its sidecar.
func podMeshed(pod *corev1.Pod) (bool, string) {
	if !inject.HasProxy(pod) {
		return false, "no sidecar"
	}
	if opt := inject.OptOuts(pod); len(opt) > 0 {
		return false, "opted out of capture: " + inject.OptOutSummary(opt)
	}
	return true, ""
}

// templateMeshed says whether a pod created from a template in ns would
// get the sidecar, as the injection webhook decides.
func templateMeshed(pod *corev1.Pod, ns *corev1.Namespace, operatorNamespace string) (bool, string) {
	if ns == nil {
		ns = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: pod.Namespace}}
	}
	ok, why := inject.ShouldInject(pod, ns, inject.Config{OperatorNamespace: operatorNamespace})
	if !ok {
		return false, "would not be injected: " + why
	}
	if opt := inject.OptOuts(pod); len(opt) > 0 {
		return false, "opts out of capture: " + inject.OptOutSummary(opt)
	}
	return true, ""
}

func replicaSetLookup(list []appsv1.ReplicaSet) func(ns, name string) *appsv1.ReplicaSet {
	idx := map[[2]string]*appsv1.ReplicaSet{}
	for i := range list {
		idx[[2]string{list[i].Namespace, list[i].Name}] = &list[i]
	}
	return func(ns, name string) *appsv1.ReplicaSet { return idx[[2]string{ns, name}] }
}

// jobOwnerIndex maps each Job owned by a CronJob to that CronJob's name.
func jobOwnerIndex(in *Inputs) map[[2]string]string {
	idx := map[[2]string]string{}
	for i := range in.Jobs {
		j := &in.Jobs[i]
		if c := metav1.GetControllerOfNoCopy(j); c != nil && c.Kind == KindCronJob {
			idx[[2]string{j.Namespace, j.Name}] = c.Name
		}
	}
	return idx
}

// podOwner is the workload a pod belongs to: its Deployment, StatefulSet or
// DaemonSet (uninjected.OwningWorkload), its Job's CronJob, its Job, its
// ReplicaSet, or the pod itself.
func podOwner(pod *corev1.Pod, rs func(ns, name string) *appsv1.ReplicaSet, jobOwners map[[2]string]string) ObjectRef {
	if wl, ok := uninjected.OwningWorkload(pod, rs); ok {
		return ObjectRef{Kind: wl.Kind, Namespace: wl.Namespace, Name: wl.Name}
	}
	c := metav1.GetControllerOfNoCopy(pod)
	switch {
	case c == nil:
		return ObjectRef{Kind: KindPod, Namespace: pod.Namespace, Name: pod.Name}
	case c.Kind == KindJob:
		if cron, ok := jobOwners[[2]string{pod.Namespace, c.Name}]; ok {
			return ObjectRef{Kind: KindCronJob, Namespace: pod.Namespace, Name: cron}
		}
		return ObjectRef{Kind: KindJob, Namespace: pod.Namespace, Name: c.Name}
	case c.Kind == KindReplicaSet:
		return ObjectRef{Kind: KindReplicaSet, Namespace: pod.Namespace, Name: c.Name}
	}
	return ObjectRef{Kind: c.Kind, Namespace: pod.Namespace, Name: c.Name}
}

// template is a workload's pod template.
type template struct {
	ref  ObjectRef
	tmpl *corev1.PodTemplateSpec
}

// templates lists the pod templates of the inputs' workloads; Jobs of a
// CronJob and ReplicaSets of a Deployment are covered by their owner.
func templates(in *Inputs) []template {
	var out []template
	add := func(kind string, meta *metav1.ObjectMeta, tmpl *corev1.PodTemplateSpec) {
		out = append(out, template{ref: ObjectRef{Kind: kind, Namespace: meta.Namespace, Name: meta.Name}, tmpl: tmpl})
	}
	for i := range in.Deployments {
		add(uninjected.KindDeployment, &in.Deployments[i].ObjectMeta, &in.Deployments[i].Spec.Template)
	}
	for i := range in.StatefulSets {
		add(uninjected.KindStatefulSet, &in.StatefulSets[i].ObjectMeta, &in.StatefulSets[i].Spec.Template)
	}
	for i := range in.DaemonSets {
		add(uninjected.KindDaemonSet, &in.DaemonSets[i].ObjectMeta, &in.DaemonSets[i].Spec.Template)
	}
	for i := range in.CronJobs {
		add(KindCronJob, &in.CronJobs[i].ObjectMeta, &in.CronJobs[i].Spec.JobTemplate.Spec.Template)
	}
	for i := range in.Jobs {
		if metav1.GetControllerOfNoCopy(&in.Jobs[i]) == nil {
			add(KindJob, &in.Jobs[i].ObjectMeta, &in.Jobs[i].Spec.Template)
		}
	}
	for i := range in.ReplicaSets {
		if metav1.GetControllerOfNoCopy(&in.ReplicaSets[i]) == nil {
			add(KindReplicaSet, &in.ReplicaSets[i].ObjectMeta, &in.ReplicaSets[i].Spec.Template)
		}
	}
	return out
}

// selects reports whether svc selects the workload's pods.
func selects(svc *corev1.Service, wl *workload) bool {
	return svc.Namespace == wl.ref.Namespace && len(svc.Spec.Selector) > 0 && matchLabels(svc.Spec.Selector, wl.labels)
}

// matchLabels reports whether labels carry every key and value of
// selector, as an equality-based label selector matches (an empty selector
// matches everything).
func matchLabels(selector, labels map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// selected returns the workloads svc selects whose labels also carry extra.
func (w *world) selected(svc *corev1.Service, extra map[string]string) []*workload {
	var out []*workload
	for _, wl := range w.byNamespace[svc.Namespace] {
		if selects(svc, wl) && matchLabels(extra, wl.labels) {
			out = append(out, wl)
		}
	}
	return out
}

// service returns the Service a host of an object in ns names, or nil.
func (w *world) service(host, ns string) *corev1.Service {
	return w.services[ir.ResolveHost(host, ns)]
}

func serviceRef(s *corev1.Service) ObjectRef {
	return ObjectRef{Kind: KindService, Namespace: s.Namespace, Name: s.Name}
}
