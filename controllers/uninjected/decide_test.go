package uninjected

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

func TestClassifyPod(t *testing.T) {
	enabled := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "app", Labels: map[string]string{meshv1alpha1.LabelInject: meshv1alpha1.InjectEnabled}}}
	plain := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "plain"}}
	operator := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "capstan-system", Labels: enabled.Labels}}
	pod := func(mut func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "p"},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}},
			Status:     corev1.PodStatus{Phase: corev1.PodRunning},
		}
		if mut != nil {
			mut(p)
		}
		return p
	}
	status := func(v string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Annotations = map[string]string{meshv1alpha1.AnnotationStatus: v}
			p.Spec.InitContainers = []corev1.Container{{Name: "capstan-init"}, {Name: meshv1alpha1.ProxyContainerName}}
		}
	}
	cases := []struct {
		name string
		pod  *corev1.Pod
		ns   *corev1.Namespace
		want PodSidecarState
	}{
		{"running without sidecar", pod(nil), enabled, PodUninjected},
		{"plain namespace", pod(nil), plain, PodFine},
		{"operator namespace", pod(nil), operator, PodFine},
		{"pending", pod(func(p *corev1.Pod) { p.Status.Phase = corev1.PodPending }), enabled, PodFine},
		{"succeeded", pod(func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }), enabled, PodFine},
		{"deleting", pod(func(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{} }), enabled, PodFine},
		{"host network", pod(func(p *corev1.Pod) { p.Spec.HostNetwork = true }), enabled, PodFine},
		{"opted out", pod(func(p *corev1.Pod) { p.Labels = map[string]string{meshv1alpha1.LabelInject: "false"} }), enabled, PodFine},
		{"label true, no sidecar", pod(func(p *corev1.Pod) { p.Labels = map[string]string{meshv1alpha1.LabelInject: "true"} }), enabled, PodUninjected},
		{"current sidecar", pod(status(`{"version":"v2"}`)), enabled, PodFine},
		{"old sidecar", pod(status(`{"version":"v1"}`)), enabled, PodOutdated},
		{"unreadable status", pod(status(`{`)), enabled, PodOutdated},
		{"old sidecar, opted out", pod(func(p *corev1.Pod) {
			status(`{"version":"v1"}`)(p)
			p.Labels = map[string]string{meshv1alpha1.LabelInject: "false"}
		}), enabled, PodFine},
		{"proxy container, no status", pod(func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: meshv1alpha1.ProxyContainerName}}
		}), enabled, PodFine},
		{"no namespace", pod(nil), nil, PodFine},
		{"status annotation without the proxy", pod(func(p *corev1.Pod) {
			p.Annotations = map[string]string{meshv1alpha1.AnnotationStatus: `{"version":"v2"}`}
		}), enabled, PodUninjected},
	}
	for _, c := range cases {
		if got := ClassifyPod(c.pod, c.ns, "capstan-system", "v2"); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestOwningWorkload(t *testing.T) {
	owner := func(kind, name, uid string) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name, UID: types.UID(uid), Controller: ptr.To(true)}}
	}
	rs := map[string]*appsv1.ReplicaSet{
		"web-1": {ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "web-1", UID: "rs1", OwnerReferences: owner("Deployment", "web", "d1")}},
		"bare":  {ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "bare", UID: "rs2"}},
	}
	lookup := func(_, name string) *appsv1.ReplicaSet { return rs[name] }
	pod := func(refs []metav1.OwnerReference) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "p", OwnerReferences: refs}}
	}
	cases := []struct {
		name   string
		pod    *corev1.Pod
		want   WorkloadRef
		wantOK bool
	}{
		{"deployment", pod(owner("ReplicaSet", "web-1", "rs1")), WorkloadRef{KindDeployment, "app", "web"}, true},
		{"statefulset", pod(owner("StatefulSet", "db", "s1")), WorkloadRef{KindStatefulSet, "app", "db"}, true},
		{"daemonset", pod(owner("DaemonSet", "agent", "ds1")), WorkloadRef{KindDaemonSet, "app", "agent"}, true},
		{"bare pod", pod(nil), WorkloadRef{}, false},
		{"job", pod([]metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: "j", Controller: ptr.To(true)}}), WorkloadRef{}, false},
		{"bare replicaset", pod(owner("ReplicaSet", "bare", "rs2")), WorkloadRef{}, false},
		{"unknown replicaset", pod(owner("ReplicaSet", "gone", "rs3")), WorkloadRef{}, false},
		{"replicaset uid mismatch", pod(owner("ReplicaSet", "web-1", "other")), WorkloadRef{}, false},
		{"not controller", pod([]metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db"}}), WorkloadRef{}, false},
		{"other group", pod([]metav1.OwnerReference{{APIVersion: "example.com/v1", Kind: "StatefulSet", Name: "db", Controller: ptr.To(true)}}), WorkloadRef{}, false},
	}
	for _, c := range cases {
		got, ok := OwningWorkload(c.pod, lookup)
		if got != c.want || ok != c.wantOK {
			t.Errorf("%s: got %v, %v; want %v, %v", c.name, got, ok, c.want, c.wantOK)
		}
	}
}

func TestBuildReportAndMeshStatus(t *testing.T) {
	web := WorkloadRef{KindDeployment, "a", "web"}
	db := WorkloadRef{KindStatefulSet, "a", "db"}
	var findings []PodFinding
	for _, n := range []string{"a/web-3", "a/web-1", "a/web-2"} {
		findings = append(findings, PodFinding{Pod: n, State: PodUninjected, Workload: web, HasOwner: true})
	}
	findings = append(findings,
		PodFinding{Pod: "a/db-0", State: PodOutdated, Workload: db, HasOwner: true},
		PodFinding{Pod: "a/bare", State: PodUninjected},
		PodFinding{Pod: "a/job-x", State: PodUninjected},
		PodFinding{Pod: "b/z", State: PodUninjected},
		PodFinding{Pod: "a/fine", State: PodFine, Workload: web, HasOwner: true},
	)
	r := BuildReport(findings)
	if want := []string{"a/bare", "a/job-x", "a/web-1", "a/web-2", "a/web-3", "b/z"}; !slices.Equal(r.Uninjected, want) {
		t.Errorf("uninjected %v, want %v", r.Uninjected, want)
	}
	if got := r.Workloads[web]; got != (WorkloadPods{Uninjected: 3, Sample: "a/web-1"}) {
		t.Errorf("web: %+v", got)
	}
	if got := r.Workloads[db]; got != (WorkloadPods{Outdated: 1, Sample: "a/db-0"}) {
		t.Errorf("db: %+v", got)
	}
	if len(r.Workloads) != 2 {
		t.Errorf("%d workloads, want 2 (bare and Job pods have none)", len(r.Workloads))
	}
	n, sample, outdated := MeshStatusFor(r)
	if n != 6 || outdated != 1 || !slices.Equal(sample, []string{"a/bare", "a/job-x", "a/web-1", "a/web-2", "a/web-3"}) {
		t.Errorf("status %d %v %d", n, sample, outdated)
	}
	if n, sample, outdated := MeshStatusFor(BuildReport(nil)); n != 0 || sample != nil || outdated != 0 {
		t.Errorf("empty status %d %v %d, want 0 nil 0", n, sample, outdated)
	}
}

func TestNextRestart(t *testing.T) {
	dep := WorkloadRef{KindDeployment, "a", "web"}
	sts := WorkloadRef{KindStatefulSet, "a", "db"}
	ds := WorkloadRef{KindDaemonSet, "a", "agent"}
	other := WorkloadRef{KindDeployment, "b", "api"}
	cases := []struct {
		name        string
		in          []WorkloadRollout
		want        WorkloadRef
		wantOK      bool
		wantBlocked *WorkloadRef
	}{
		{"nothing to do", []WorkloadRollout{{Ref: dep, Generation: 1, Complete: true}}, WorkloadRef{}, false, nil},
		{"deployments before statefulsets before daemonsets", []WorkloadRollout{
			{Ref: ds, Generation: 1, Complete: true, NeedsRestart: true},
			{Ref: sts, Generation: 1, Complete: true, NeedsRestart: true},
			{Ref: dep, Generation: 1, Complete: true, NeedsRestart: true},
		}, dep, true, nil},
		{"namespace first", []WorkloadRollout{
			{Ref: other, Generation: 1, Complete: true, NeedsRestart: true},
			{Ref: ds, Generation: 1, Complete: true, NeedsRestart: true},
		}, ds, true, nil},
		{"rollout in progress blocks the next", []WorkloadRollout{
			{Ref: dep, Generation: 2, RestartedGeneration: 2, Complete: false, NeedsRestart: true},
			{Ref: sts, Generation: 1, Complete: true, NeedsRestart: true},
		}, WorkloadRef{}, false, &dep},
		{"cache behind our patch blocks too", []WorkloadRollout{
			{Ref: dep, Generation: 1, RestartedGeneration: 2, Complete: true, NeedsRestart: true},
			{Ref: sts, Generation: 1, Complete: true, NeedsRestart: true},
		}, WorkloadRef{}, false, &dep},
		{"complete rollout: next one, never twice at one generation", []WorkloadRollout{
			{Ref: dep, Generation: 2, RestartedGeneration: 2, Complete: true, NeedsRestart: true},
			{Ref: sts, Generation: 1, Complete: true, NeedsRestart: true},
		}, sts, true, nil},
		{"all restarted at their generation", []WorkloadRollout{
			{Ref: dep, Generation: 2, RestartedGeneration: 2, Complete: true, NeedsRestart: true},
		}, WorkloadRef{}, false, nil},
		{"changed since our restart: restart again", []WorkloadRollout{
			{Ref: dep, Generation: 3, RestartedGeneration: 2, Complete: true, NeedsRestart: true},
		}, dep, true, nil},
		{"a workload's own rollout does not block unless we restarted it", []WorkloadRollout{
			{Ref: dep, Generation: 5, Complete: false},
			{Ref: sts, Generation: 1, Complete: true, NeedsRestart: true},
		}, sts, true, nil},
		{"our old restart, user's rollout in progress", []WorkloadRollout{
			{Ref: dep, Generation: 5, RestartedGeneration: 2, Complete: false},
			{Ref: sts, Generation: 1, Complete: true, NeedsRestart: true},
		}, WorkloadRef{}, false, &dep},
	}
	for _, c := range cases {
		got, ok, blocked := NextRestart(c.in)
		if got != c.want || ok != c.wantOK || (blocked == nil) != (c.wantBlocked == nil) || (blocked != nil && *blocked != *c.wantBlocked) {
			t.Errorf("%s: got %v %v blocked %v; want %v %v blocked %v", c.name, got, ok, blocked, c.want, c.wantOK, c.wantBlocked)
		}
	}
}

func TestRolloutComplete(t *testing.T) {
	meta := metav1.ObjectMeta{Generation: 2}
	cases := []struct {
		name string
		obj  any
		want bool
	}{
		{"deployment not observed", &appsv1.Deployment{ObjectMeta: meta, Status: appsv1.DeploymentStatus{ObservedGeneration: 1}}, false},
		{"deployment observed, no replicas (envtest)", &appsv1.Deployment{ObjectMeta: meta, Status: appsv1.DeploymentStatus{ObservedGeneration: 2}}, true},
		{"deployment updating", &appsv1.Deployment{ObjectMeta: meta, Status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 2, AvailableReplicas: 3}}, false},
		{"deployment unavailable", &appsv1.Deployment{ObjectMeta: meta, Status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 2}}, false},
		{"deployment done", &appsv1.Deployment{ObjectMeta: meta, Status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3}}, true},
		{"statefulset not observed", &appsv1.StatefulSet{ObjectMeta: meta, Status: appsv1.StatefulSetStatus{ObservedGeneration: 1}}, false},
		{"statefulset not ready", &appsv1.StatefulSet{ObjectMeta: meta, Status: appsv1.StatefulSetStatus{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 1}}, false},
		{"statefulset done", &appsv1.StatefulSet{ObjectMeta: meta, Status: appsv1.StatefulSetStatus{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2}}, true},
		{"daemonset updating", &appsv1.DaemonSet{ObjectMeta: meta, Status: appsv1.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: 3, UpdatedNumberScheduled: 1, NumberAvailable: 3}}, false},
		{"daemonset done", &appsv1.DaemonSet{ObjectMeta: meta, Status: appsv1.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: 3, UpdatedNumberScheduled: 3, NumberAvailable: 3}}, true},
	}
	for _, c := range cases {
		if got := RolloutComplete(c.obj); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestPodOptOuts(t *testing.T) {
	enabled := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "app", Labels: map[string]string{meshv1alpha1.LabelInject: meshv1alpha1.InjectEnabled}}}
	plain := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "plain"}}
	injected := func(mut func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "p", Annotations: map[string]string{}},
			Spec: corev1.PodSpec{
				InitContainers: []corev1.Container{{Name: "capstan-init"}, {Name: meshv1alpha1.ProxyContainerName,
					SecurityContext: &corev1.SecurityContext{RunAsUser: ptr.To[int64](meshv1alpha1.ProxyUID)}}},
				Containers: []corev1.Container{{Name: "app", Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}},
			},
			Status: corev1.PodStatus{Phase: corev1.PodRunning},
		}
		if mut != nil {
			mut(p)
		}
		return p
	}
	cases := []struct {
		name string
		pod  *corev1.Pod
		ns   *corev1.Namespace
		want []string // substrings, one per opt-out
	}{
		{"injected, nothing excluded", injected(nil), enabled, nil},
		{"label false", injected(func(p *corev1.Pod) {
			p.Labels = map[string]string{meshv1alpha1.LabelInject: "false"}
			p.Spec.InitContainers = nil
		}), enabled, []string{"pod label capstan.dev/inject=false"}},
		{"label false, plain namespace", injected(func(p *corev1.Pod) {
			p.Labels = map[string]string{meshv1alpha1.LabelInject: "false"}
		}), plain, nil},
		{"all outbound excluded", injected(func(p *corev1.Pod) {
			p.Annotations[meshv1alpha1.AnnotationExcludeOutboundIPRanges] = "0.0.0.0/0"
		}), enabled, []string{"every IPv4 destination"}},
		{"all inbound excluded", injected(func(p *corev1.Pod) {
			p.Annotations[meshv1alpha1.AnnotationExcludeInboundPorts] = "8080"
		}), enabled, []string{"every port the pod's containers declare"}},
		{"app as the proxy UID", injected(func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{RunAsUser: ptr.To[int64](meshv1alpha1.ProxyUID)}
		}), enabled, []string{"spec.containers[0].securityContext.runAsUser is 1337"}},
		{"uninjected is not opted out", injected(func(p *corev1.Pod) {
			p.Spec.InitContainers = nil
			p.Annotations[meshv1alpha1.AnnotationExcludeOutboundIPRanges] = "0.0.0.0/0"
		}), enabled, nil},
		{"not running", injected(func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodPending
			p.Annotations[meshv1alpha1.AnnotationExcludeOutboundIPRanges] = "0.0.0.0/0"
		}), enabled, nil},
	}
	for _, c := range cases {
		got := PodOptOuts(c.pod, c.ns, "capstan-system")
		if len(got) != len(c.want) {
			t.Errorf("%s: got %q, want %d opt-outs", c.name, got, len(c.want))
			continue
		}
		for i := range got {
			if !strings.Contains(got[i], c.want[i]) {
				t.Errorf("%s: %q does not contain %q", c.name, got[i], c.want[i])
			}
		}
	}
}

func TestReportOptedOut(t *testing.T) {
	r := BuildReport([]PodFinding{
		{Pod: "b/x", State: PodFine, OptOuts: []string{"label"}},
		{Pod: "a/y", State: PodOutdated, OptOuts: []string{"all outbound"}},
		{Pod: "a/z", State: PodUninjected},
	})
	if want := []string{"a/y", "b/x"}; !slices.Equal(r.OptedOut, want) {
		t.Errorf("opted out %v, want %v", r.OptedOut, want)
	}
	if n, sample := OptedOutStatusFor(r); n != 2 || !slices.Equal(sample, []string{"a/y", "b/x"}) {
		t.Errorf("status %d %v", n, sample)
	}
	if n, sample := OptedOutStatusFor(BuildReport(nil)); n != 0 || sample != nil {
		t.Errorf("empty report: %d %v", n, sample)
	}
}
