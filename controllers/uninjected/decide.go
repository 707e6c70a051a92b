package uninjected

import (
	"cmp"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/webhook/inject"
)

// Annotations written by the Reconciler when it restarts a workload.
const (
	// AnnotationRestartedAt is set on a workload's pod template to restart it,
	// as kubectl rollout restart sets kubectl.kubernetes.io/restartedAt.
	AnnotationRestartedAt = "capstan.dev/restartedAt"
	// AnnotationRestartedGeneration is set on the workload itself, in the same
	// patch, to the generation that patch produces: the workload is never
	// restarted again at that generation.
	AnnotationRestartedGeneration = "capstan.dev/restarted-generation"
)

// Event reasons of the Reconciler.
const (
	ReasonPodsWithoutSidecar      = "PodsWithoutSidecar"
	ReasonPodsWithOutdatedSidecar = "PodsWithOutdatedSidecar"
	ReasonRolloutRestarted        = "RolloutRestarted"
	// ReasonPodOptedOut is the Warning Event on a pod that opted out of
	// capture in an injection-enabled namespace (PodOptOuts).
	ReasonPodOptedOut = "PodOptedOut"
)

// SampleSize is how many pods Mesh.status.uninjectedSample lists.
const SampleSize = 5

// PodSidecarState says whether a pod runs the sidecar it should.
type PodSidecarState int

// Pod sidecar states.
const (
	// PodFine needs nothing: it has the current sidecar, or should have none.
	PodFine PodSidecarState = iota
	// PodUninjected should have the sidecar and has none.
	PodUninjected
	// PodOutdated has a sidecar injected by another version of Capstan.
	PodOutdated
)

// ClassifyPod tells whether pod, in namespace ns, lacks the sidecar or
// carries an outdated one. Only running pods that are not being deleted, in
// a namespace labelled capstan.dev/inject=enabled other than
// operatorNamespace, not on the host network and not opted out with the pod
// label capstan.dev/inject=false are considered. A pod without a
// capstan-proxy container is uninjected, whatever its annotations say (a
// capstan.dev/status annotation alone is no sidecar). A sidecar is outdated
// when the version in its capstan.dev/status annotation differs from
// version, or when that annotation cannot be read; a sidecar container
// without the annotation has an unknown version and is left alone.
func ClassifyPod(pod *corev1.Pod, ns *corev1.Namespace, operatorNamespace, version string) PodSidecarState {
	switch {
	case !considered(pod, ns, operatorNamespace):
		return PodFine
	case pod.Labels[meshv1alpha1.LabelInject] == "false":
		return PodFine
	case !inject.HasProxy(pod):
		return PodUninjected
	}
	s, ok, err := inject.ParseStatus(pod)
	switch {
	case err != nil:
		return PodOutdated
	case ok && s.Version != version:
		return PodOutdated
	}
	return PodFine
}

// considered reports whether pod is a running pod, not being deleted and not
// on the host network, in ns, a namespace labelled capstan.dev/inject=enabled
// other than operatorNamespace.
func considered(pod *corev1.Pod, ns *corev1.Namespace, operatorNamespace string) bool {
	switch {
	case pod == nil || ns == nil:
		return false
	case pod.Status.Phase != corev1.PodRunning || pod.DeletionTimestamp != nil:
		return false
	case ns.Labels[meshv1alpha1.LabelInject] != meshv1alpha1.InjectEnabled || ns.Name == operatorNamespace:
		return false
	}
	return !pod.Spec.HostNetwork
}

// PodOptOuts says how pod, in namespace ns, opted out of traffic capture
// (and so of mTLS and mesh policy) although its namespace has injection
// enabled: the pod label capstan.dev/inject=false; or, on a pod with the
// sidecar, capstan.dev/exclude-* annotations that exclude all its inbound or
// outbound traffic (inject.OptOuts) and containers running as the proxy's
// UID or GID (inject.ProxyIDClashes). The pods considered are ClassifyPod's.
// It returns nil for a pod that did not opt out.
func PodOptOuts(pod *corev1.Pod, ns *corev1.Namespace, operatorNamespace string) []string {
	if !considered(pod, ns, operatorNamespace) {
		return nil
	}
	if pod.Labels[meshv1alpha1.LabelInject] == "false" {
		return []string{"pod label " + meshv1alpha1.LabelInject + "=false: the pod has no sidecar"}
	}
	if !inject.HasProxy(pod) {
		return nil // uninjected, reported as such
	}
	return slices.Concat(inject.OptOuts(pod), inject.ProxyIDClashes(pod))
}

// Workload kinds the Reconciler reports and restarts.
const (
	KindDeployment  = "Deployment"
	KindStatefulSet = "StatefulSet"
	KindDaemonSet   = "DaemonSet"
)

// WorkloadRef names a Deployment, StatefulSet or DaemonSet.
type WorkloadRef struct {
	Kind      string
	Namespace string
	Name      string
}

func (w WorkloadRef) String() string { return w.Kind + " " + w.Namespace + "/" + w.Name }

func kindRank(kind string) int {
	switch kind {
	case KindDeployment:
		return 0
	case KindStatefulSet:
		return 1
	default:
		return 2
	}
}

// CompareWorkloads orders workloads by namespace, then Deployments before
// StatefulSets before DaemonSets, then by name: the order of restarts.
func CompareWorkloads(a, b WorkloadRef) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(kindRank(a.Kind), kindRank(b.Kind)), cmp.Compare(a.Name, b.Name))
}

// controllerOf returns the controlling owner reference of obj, or nil.
func controllerOf(obj metav1.Object) *metav1.OwnerReference {
	return metav1.GetControllerOfNoCopy(obj)
}

// OwningWorkload resolves the workload that owns pod through its controller
// references: Pod → ReplicaSet → Deployment, Pod → StatefulSet and
// Pod → DaemonSet. replicaSet looks a ReplicaSet up by namespace and name
// (nil when unknown). Bare pods, Job pods, bare ReplicaSets and anything else
// have no workload: ok is false.
func OwningWorkload(pod *corev1.Pod, replicaSet func(namespace, name string) *appsv1.ReplicaSet) (WorkloadRef, bool) {
	ref := controllerOf(pod)
	if ref == nil || !isAppsV1(ref) {
		return WorkloadRef{}, false
	}
	switch ref.Kind {
	case KindStatefulSet, KindDaemonSet:
		return WorkloadRef{Kind: ref.Kind, Namespace: pod.Namespace, Name: ref.Name}, true
	case "ReplicaSet":
		rs := replicaSet(pod.Namespace, ref.Name)
		if rs == nil || rs.UID != ref.UID {
			return WorkloadRef{}, false
		}
		dref := controllerOf(rs)
		if dref == nil || !isAppsV1(dref) || dref.Kind != KindDeployment {
			return WorkloadRef{}, false
		}
		return WorkloadRef{Kind: KindDeployment, Namespace: pod.Namespace, Name: dref.Name}, true
	}
	return WorkloadRef{}, false
}

func isAppsV1(ref *metav1.OwnerReference) bool {
	return ref.APIVersion == appsv1.SchemeGroupVersion.String()
}

// WorkloadPods counts a workload's pods that need a restart.
type WorkloadPods struct {
	Uninjected int
	Outdated   int
	// Sample is the first pod ("ns/name", sorted) needing a restart.
	Sample string
}

// Report is what the reconciler found across the cluster.
type Report struct {
	// Uninjected, Outdated and OptedOut are the pods found, as sorted "ns/name".
	Uninjected []string
	Outdated   []string
	OptedOut   []string
	// Workloads are the owners of those pods; pods without one (bare pods,
	// Job pods) are only counted.
	Workloads map[WorkloadRef]WorkloadPods
}

// PodFinding is one classified pod and its owner, if any.
type PodFinding struct {
	Pod      string // "ns/name"
	State    PodSidecarState
	Workload WorkloadRef
	HasOwner bool
	// OptOuts are PodOptOuts; a pod with any is in Report.OptedOut.
	OptOuts []string
}

// BuildReport gathers findings into a report. Findings in state PodFine are ignored.
func BuildReport(findings []PodFinding) Report {
	r := Report{Workloads: map[WorkloadRef]WorkloadPods{}}
	sorted := slices.Clone(findings)
	slices.SortFunc(sorted, func(a, b PodFinding) int { return cmp.Compare(a.Pod, b.Pod) })
	for _, f := range sorted {
		if len(f.OptOuts) > 0 {
			r.OptedOut = append(r.OptedOut, f.Pod)
		}
		switch f.State {
		case PodUninjected:
			r.Uninjected = append(r.Uninjected, f.Pod)
		case PodOutdated:
			r.Outdated = append(r.Outdated, f.Pod)
		default:
			continue
		}
		if !f.HasOwner {
			continue
		}
		w := r.Workloads[f.Workload]
		if f.State == PodUninjected {
			w.Uninjected++
		} else {
			w.Outdated++
		}
		if w.Sample == "" {
			w.Sample = f.Pod
		}
		r.Workloads[f.Workload] = w
	}
	return r
}

// MeshStatusFor returns the Mesh status fields for the report.
func MeshStatusFor(r Report) (uninjected int32, sample []string, outdated int32) {
	return int32(len(r.Uninjected)), sampleOf(r.Uninjected), int32(len(r.Outdated))
}

// OptedOutStatusFor returns Mesh.status.optedOutPods and optedOutSample for the report.
func OptedOutStatusFor(r Report) (optedOut int32, sample []string) {
	return int32(len(r.OptedOut)), sampleOf(r.OptedOut)
}

// sampleOf returns the first SampleSize pods, or nil.
func sampleOf(pods []string) []string {
	n := min(len(pods), SampleSize)
	if n == 0 {
		return nil
	}
	return slices.Clone(pods[:n])
}

// WorkloadRollout is what the restart decision needs to know of a workload.
type WorkloadRollout struct {
	Ref        WorkloadRef
	Generation int64
	// RestartedGeneration is the generation our last restart produced (0 if
	// never restarted by us).
	RestartedGeneration int64
	// Complete reports whether the controller has rolled the current
	// generation out (see RolloutComplete).
	Complete bool
	// NeedsRestart reports whether the workload has pods without the
	// current sidecar.
	NeedsRestart bool
}

// InProgress reports whether a rollout we started is still going: the
// workload was restarted by us and its controller has not finished rolling
// it out.
func (w WorkloadRollout) InProgress() bool {
	return w.RestartedGeneration > 0 && (w.Generation < w.RestartedGeneration || !w.Complete)
}

// NextRestart picks the one workload to restart now, or none. While a
// rollout we started is in progress, it returns none and names that
// workload in blocked. Otherwise it returns the first workload, in
// CompareWorkloads order, that needs a restart and that we have not already
// restarted at its current generation.
func NextRestart(workloads []WorkloadRollout) (next WorkloadRef, ok bool, blocked *WorkloadRef) {
	sorted := slices.Clone(workloads)
	slices.SortFunc(sorted, func(a, b WorkloadRollout) int { return CompareWorkloads(a.Ref, b.Ref) })
	for _, w := range sorted {
		if w.InProgress() {
			ref := w.Ref
			return WorkloadRef{}, false, &ref
		}
	}
	for _, w := range sorted {
		if w.NeedsRestart && w.Generation > w.RestartedGeneration {
			return w.Ref, true, nil
		}
	}
	return WorkloadRef{}, false, nil
}

// RolloutComplete reports whether a workload's controller has rolled out its
// current generation: status.observedGeneration has caught up with
// metadata.generation and every replica is updated and available (ready for
// a StatefulSet). envtest runs no controllers, so there a rollout is complete
// once a test sets status.observedGeneration.
func RolloutComplete(obj any) bool {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		s := o.Status
		return s.ObservedGeneration >= o.Generation && s.UpdatedReplicas == s.Replicas && s.AvailableReplicas == s.Replicas
	case *appsv1.StatefulSet:
		s := o.Status
		return s.ObservedGeneration >= o.Generation && s.UpdatedReplicas == s.Replicas && s.ReadyReplicas == s.Replicas
	case *appsv1.DaemonSet:
		s := o.Status
		return s.ObservedGeneration >= o.Generation && s.UpdatedNumberScheduled == s.DesiredNumberScheduled &&
			s.NumberAvailable == s.DesiredNumberScheduled
	}
	return true
}

// EventState is what an Event about a workload reported; a new Event is
// only recorded when it changes.
type EventState struct {
	Generation    int64
	HasUninjected bool
	HasOutdated   bool
}
