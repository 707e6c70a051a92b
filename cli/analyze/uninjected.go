package analyze

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/capstanmesh/capstan/controllers/uninjected"
)

// uninjectedPods (CAP001, seed failure 1): running pods in an
// injection-enabled namespace that have no sidecar, because they predate
// the namespace label (or the webhook was down).
func uninjectedPods(w *world) []Finding {
	report, bare := Uninjected(w.in)
	out := make([]Finding, 0, len(report.Workloads)+len(bare))
	for _, ref := range slices.SortedFunc(maps.Keys(report.Workloads), uninjected.CompareWorkloads) {
		out = append(out, workloadFinding(ref, report.Workloads[ref], w.in.Version))
	}
	for _, pod := range bare {
		out = append(out, barePodFinding(pod))
	}
	return out
}

// Uninjected classifies the inputs' pods as the operator does
// (controllers/uninjected), so that analyze, restart-uninjected and
// Mesh.status agree: the report of the workloads whose pods lack the
// sidecar (or, when in.Version is set, carry another version), and the
// pods without the sidecar that have no such workload (bare pods, Job pods).
func Uninjected(in *Inputs) (uninjected.Report, []*corev1.Pod) {
	namespaces := map[string]*corev1.Namespace{}
	for i := range in.Namespaces {
		namespaces[in.Namespaces[i].Name] = &in.Namespaces[i]
	}
	rs := replicaSetLookup(in.ReplicaSets)
	var findings []uninjected.PodFinding
	var bare []*corev1.Pod
	for i := range in.Pods {
		pod := &in.Pods[i]
		state := uninjected.ClassifyPod(pod, namespaces[pod.Namespace], in.operatorNamespace(), in.Version)
		if state == uninjected.PodFine || (state == uninjected.PodOutdated && in.Version == "") {
			continue // an unknown injector version outdates nothing
		}
		wl, ok := uninjected.OwningWorkload(pod, rs)
		if !ok && state == uninjected.PodUninjected {
			bare = append(bare, pod)
		}
		findings = append(findings, uninjected.PodFinding{Pod: pod.Namespace + "/" + pod.Name, State: state, Workload: wl, HasOwner: ok})
	}
	return uninjected.BuildReport(findings), bare
}

func workloadFinding(ref uninjected.WorkloadRef, pods uninjected.WorkloadPods, version string) Finding {
	restart := fmt.Sprintf("kubectl rollout restart %s/%s -n %s", strings.ToLower(ref.Kind), ref.Name, ref.Namespace)
	f := Finding{
		Code:     CodeUninjectedPods,
		Severity: SeverityError,
		Object:   ObjectRef{Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name},
		Fix: fmt.Sprintf("restart the workload so that its pods are injected: %s (or every such workload of the namespace: "+
			"capstanctl restart-uninjected -n %s; or let the operator do it: Mesh.spec.injection.restartUninjected: true)",
			restart, ref.Namespace),
	}
	switch {
	case pods.Uninjected > 0:
		f.Message = fmt.Sprintf("%d running pod(s) have no sidecar although namespace %s has injection enabled (e.g. %s): "+
			"they predate the label and bypass mTLS and mesh policy; STRICT mTLS refuses their calls", pods.Uninjected, ref.Namespace, pods.Sample)
	default:
		f.Severity = SeverityWarning
		f.Message = fmt.Sprintf("%d running pod(s) have a sidecar of another version than %s (e.g. %s)", pods.Outdated, version, pods.Sample)
	}
	return f
}

func barePodFinding(pod *corev1.Pod) Finding {
	return Finding{
		Code:     CodeUninjectedPods,
		Severity: SeverityError,
		Object:   ObjectRef{Kind: KindPod, Namespace: pod.Namespace, Name: pod.Name},
		Message: fmt.Sprintf("running pod has no sidecar although namespace %s has injection enabled; "+
			"it has no Deployment, StatefulSet or DaemonSet to restart", pod.Namespace),
		Fix: fmt.Sprintf("recreate the pod so that it is injected: kubectl delete pod %s -n %s, then create it again "+
			"(a Job's pod: rerun the Job)", pod.Name, pod.Namespace),
	}
}
