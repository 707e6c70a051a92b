package uninjected

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/controllers/meshstatus"
	"github.com/capstanmesh/capstan/internal/meshmetrics"
	"github.com/capstanmesh/capstan/webhook/inject"
)

// Reading workloads is the operator's own role; restarting them (patch) is
// the separate ClusterRole capstan-restarter, bound only where
// Mesh.spec.injection.restartUninjected is used (config/rbac/restarter).
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;daemonsets;replicasets,verbs=get;list;watch
// +kubebuilder:rbac:roleName=capstan-restarter,groups=apps,resources=deployments;statefulsets;daemonsets,verbs=patch

// Reconciler finds running pods in injection-enabled namespaces
// that lack the sidecar (they predate the namespace label) or carry a sidecar
// of another version. It counts them in the default Mesh's status, records a
// Warning Event on each owning Deployment, StatefulSet or DaemonSet, and, when
// Mesh.spec.injection.restartUninjected is true, restarts those workloads one
// at a time by patching their pod template annotation capstan.dev/restartedAt.
// Restarting needs the ClusterRole capstan-restarter; without it the Mesh's
// RestartUninjected condition says so and nothing is patched. It also counts
// the pods that opted out of capture (PodOptOuts) in Mesh.status.optedOutPods
// and records a Warning Event on each.
//
// It reconciles the whole cluster at once: every watched object enqueues the
// same request.
type Reconciler struct {
	Client   client.Client
	Recorder recorder.EventRecorder
	// Status is the Mesh's status writer, which the counts, samples and the
	// RestartUninjected condition are handed to (one writing with Client
	// and Recorder when nil).
	Status *meshstatus.Writer
	// Version is the sidecar version the injector writes now
	// (inject.DefaultVersion when empty).
	Version string
	// OperatorNamespace is never considered (inject.DefaultOperatorNamespace when empty).
	OperatorNamespace string
	// Now returns the time written in capstan.dev/restartedAt (time.Now when nil).
	Now func() time.Time
	// PermissionTTL is how long a check of the restart permission holds
	// (DefaultPermissionTTL when 0); see checkRestartPermission.
	PermissionTTL time.Duration

	mu sync.Mutex
	// reported is the last state an Event was recorded for, by workload UID.
	reported map[types.UID]EventState
	// restarted is the generation our last restart of a workload produced, by
	// UID, for when the cache has not caught up with the patch yet.
	restarted map[types.UID]int64
	// optOutsReported is what the last PodOptedOut Event said, by pod UID.
	optOutsReported map[types.UID]string
	// permission is whether the operator may restart workloads, as last checked.
	permission restartPermission
}

// uninjectedRequest is the one request every watch enqueues.
var uninjectedRequest = reconcile.Request{NamespacedName: types.NamespacedName{Name: meshv1alpha1.MeshName}}

// Reconcile implements reconcile.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, _ ctrl.Request) (ctrl.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reported == nil {
		r.reported = map[types.UID]EventState{}
		r.restarted = map[types.UID]int64{}
		r.optOutsReported = map[types.UID]string{}
	}
	report, optedOut, err := r.scan(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	meshmetrics.SetPodsWithoutSidecar(report.Uninjected, report.Outdated)
	workloads, err := r.listWorkloads(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	r.recordEvents(report, workloads)
	r.recordOptOutEvents(optedOut)

	mesh := &meshv1alpha1.Mesh{}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: meshv1alpha1.MeshName}, mesh); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("reading the Mesh: %w", err)
	}
	var restart *metav1.Condition
	if mesh.Spec.Injection.RestartUninjected {
		c := r.checkRestartPermission(ctx).condition(mesh.Generation)
		restart = &c
	}
	if err := r.writeStatus(ctx, mesh, report, restart); err != nil {
		return ctrl.Result{}, err
	}
	switch {
	case restart == nil:
		return ctrl.Result{}, nil
	case restart.Status != metav1.ConditionTrue:
		// Reported, not restarted; look again for a new binding.
		return ctrl.Result{RequeueAfter: r.permissionTTL()}, nil
	}
	err = r.restartNext(ctx, report, workloads)
	if forbidden := (*restartForbiddenError)(nil); errors.As(err, &forbidden) {
		// The binding went away since the last check: say so now.
		r.permission = restartPermission{checked: r.now(), allowed: false, reason: forbidden.Error()}
		c := r.permission.condition(mesh.Generation)
		return ctrl.Result{RequeueAfter: r.permissionTTL()}, r.writeStatus(ctx, mesh, report, &c)
	}
	return ctrl.Result{}, err
}

func (r *Reconciler) version() string {
	if r.Version == "" {
		return inject.DefaultVersion
	}
	return r.Version
}

func (r *Reconciler) operatorNamespace() string {
	if r.OperatorNamespace == "" {
		return inject.DefaultOperatorNamespace
	}
	return r.OperatorNamespace
}

// scan classifies the pods of every enabled namespace. It lists pods and
// ReplicaSets across the cache (which may be limited to some namespaces)
// rather than per namespace, without deep copies: they are only read. It
// also returns the pods that opted out of capture, with how.
func (r *Reconciler) scan(ctx context.Context) (Report, []optedOutPod, error) {
	namespaces := &corev1.NamespaceList{}
	if err := r.Client.List(ctx, namespaces, client.MatchingLabels{meshv1alpha1.LabelInject: meshv1alpha1.InjectEnabled}); err != nil {
		return Report{}, nil, fmt.Errorf("listing namespaces: %w", err)
	}
	enabled := map[string]*corev1.Namespace{}
	for i := range namespaces.Items {
		if ns := &namespaces.Items[i]; ns.Name != r.operatorNamespace() {
			enabled[ns.Name] = ns
		}
	}
	if len(enabled) == 0 {
		return BuildReport(nil), nil, nil
	}
	pods := &corev1.PodList{}
	if err := r.Client.List(ctx, pods, client.UnsafeDisableDeepCopy); err != nil {
		return Report{}, nil, fmt.Errorf("listing pods: %w", err)
	}
	rsList := &appsv1.ReplicaSetList{}
	if err := r.Client.List(ctx, rsList, client.UnsafeDisableDeepCopy); err != nil {
		return Report{}, nil, fmt.Errorf("listing replicasets: %w", err)
	}
	replicaSets := map[types.NamespacedName]*appsv1.ReplicaSet{}
	for i := range rsList.Items {
		rs := &rsList.Items[i]
		replicaSets[types.NamespacedName{Namespace: rs.Namespace, Name: rs.Name}] = rs
	}
	lookup := func(namespace, name string) *appsv1.ReplicaSet {
		return replicaSets[types.NamespacedName{Namespace: namespace, Name: name}]
	}
	var findings []PodFinding
	var optedOut []optedOutPod
	for i := range pods.Items {
		pod := &pods.Items[i]
		ns, ok := enabled[pod.Namespace]
		if !ok {
			continue
		}
		state := ClassifyPod(pod, ns, r.operatorNamespace(), r.version())
		optOuts := PodOptOuts(pod, ns, r.operatorNamespace())
		if state == PodFine && len(optOuts) == 0 {
			continue
		}
		if len(optOuts) > 0 {
			optedOut = append(optedOut, optedOutPod{pod: pod, optOuts: optOuts})
		}
		w, ok := OwningWorkload(pod, lookup)
		findings = append(findings, PodFinding{Pod: pod.Namespace + "/" + pod.Name, State: state, Workload: w, HasOwner: ok, OptOuts: optOuts})
	}
	return BuildReport(findings), optedOut, nil
}

// optedOutPod is a pod that opted out of capture, and how (PodOptOuts).
type optedOutPod struct {
	pod     *corev1.Pod
	optOuts []string
}

// maxEventNote bounds an Event's note (the API server refuses more than 1 kB).
const maxEventNote = 1000

// recordOptOutEvents records a Warning Event on each opted-out pod whose
// opt-outs changed since the last Event, and forgets pods no longer listed.
func (r *Reconciler) recordOptOutEvents(pods []optedOutPod) {
	seen := make(map[types.UID]bool, len(pods))
	for _, p := range pods {
		note := "pod opted out of the mesh's traffic capture, mTLS and policy: " + strings.Join(p.optOuts, "; ")
		if len(note) > maxEventNote {
			note = note[:maxEventNote-3] + "..."
		}
		seen[p.pod.UID] = true
		if r.optOutsReported[p.pod.UID] == note {
			continue
		}
		r.optOutsReported[p.pod.UID] = note
		if r.Recorder != nil {
			r.Recorder.Eventf(p.pod, nil, corev1.EventTypeWarning, ReasonPodOptedOut, "Inject", "%s", note)
		}
	}
	maps.DeleteFunc(r.optOutsReported, func(uid types.UID, _ string) bool { return !seen[uid] })
}

// listWorkloads returns every Deployment, StatefulSet and DaemonSet by reference.
func (r *Reconciler) listWorkloads(ctx context.Context) (map[WorkloadRef]client.Object, error) {
	out := map[WorkloadRef]client.Object{}
	deployments := &appsv1.DeploymentList{}
	if err := r.Client.List(ctx, deployments); err != nil {
		return nil, fmt.Errorf("listing deployments: %w", err)
	}
	for i := range deployments.Items {
		o := &deployments.Items[i]
		out[WorkloadRef{Kind: KindDeployment, Namespace: o.Namespace, Name: o.Name}] = o
	}
	statefulSets := &appsv1.StatefulSetList{}
	if err := r.Client.List(ctx, statefulSets); err != nil {
		return nil, fmt.Errorf("listing statefulsets: %w", err)
	}
	for i := range statefulSets.Items {
		o := &statefulSets.Items[i]
		out[WorkloadRef{Kind: KindStatefulSet, Namespace: o.Namespace, Name: o.Name}] = o
	}
	daemonSets := &appsv1.DaemonSetList{}
	if err := r.Client.List(ctx, daemonSets); err != nil {
		return nil, fmt.Errorf("listing daemonsets: %w", err)
	}
	for i := range daemonSets.Items {
		o := &daemonSets.Items[i]
		out[WorkloadRef{Kind: KindDaemonSet, Namespace: o.Namespace, Name: o.Name}] = o
	}
	return out, nil
}

// recordEvents records a Warning Event on each workload whose state changed
// since the last Event, and forgets workloads that are fine again.
func (r *Reconciler) recordEvents(report Report, workloads map[WorkloadRef]client.Object) {
	seen := map[types.UID]bool{}
	refs := slices.SortedFunc(maps.Keys(report.Workloads), CompareWorkloads)
	for _, ref := range refs {
		obj, ok := workloads[ref]
		if !ok {
			continue
		}
		pods := report.Workloads[ref]
		state := EventState{Generation: obj.GetGeneration(), HasUninjected: pods.Uninjected > 0, HasOutdated: pods.Outdated > 0}
		seen[obj.GetUID()] = true
		if last, ok := r.reported[obj.GetUID()]; ok && last == state {
			continue
		}
		r.reported[obj.GetUID()] = state
		if r.Recorder == nil {
			continue
		}
		if pods.Uninjected > 0 {
			r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, ReasonPodsWithoutSidecar, "Inject",
				"%d running pod(s) have no capstan sidecar (e.g. %s); they predate injection: restart the %s, or set Mesh.spec.injection.restartUninjected",
				pods.Uninjected, pods.Sample, ref.Kind)
		} else {
			r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, ReasonPodsWithOutdatedSidecar, "Inject",
				"%d running pod(s) have a capstan sidecar of another version than %s (e.g. %s): restart the %s, or set Mesh.spec.injection.restartUninjected",
				pods.Outdated, r.version(), pods.Sample, ref.Kind)
		}
	}
	for uid := range r.reported {
		if !seen[uid] {
			delete(r.reported, uid)
		}
	}
}

// writeStatus hands the counts and samples, and the RestartUninjected
// condition (removed when restart is nil), to the Mesh's status writer,
// which writes them when they changed and records an Event when that
// condition's status changes.
func (r *Reconciler) writeStatus(ctx context.Context, mesh *meshv1alpha1.Mesh, report Report, restart *metav1.Condition) error {
	part := reportPart(mesh.Generation, report, restart)
	if _, err := r.statusWriter().Write(ctx, part); err != nil {
		if meshstatus.IsConflict(err) {
			// The newer Mesh is on its way through the watch.
			log.FromContext(ctx).V(1).Info("Mesh status update conflict, waiting for the newer version")
			return nil
		}
		return err
	}
	return nil
}

func (r *Reconciler) statusWriter() *meshstatus.Writer {
	if r.Status == nil {
		r.Status = meshstatus.NewWriter(r.Client, nil, r.Recorder)
	}
	return r.Status
}

// reportPart is the report's share of the Mesh status, computed from the
// Mesh at generation.
func reportPart(generation int64, report Report, restart *metav1.Condition) meshstatus.Part {
	uninjected, sample, outdated := MeshStatusFor(report)
	optedOut, optedOutSample := OptedOutStatusFor(report)
	part := meshstatus.Part{
		Source:     "uninjected",
		Generation: generation,
		Events:     map[string]string{meshv1alpha1.ConditionRestartUninjected: "Restart"},
		Fields: func(st *meshv1alpha1.MeshStatus) bool {
			if st.UninjectedPods == uninjected && st.OutdatedPods == outdated && slices.Equal(st.UninjectedSample, sample) &&
				st.OptedOutPods == optedOut && slices.Equal(st.OptedOutSample, optedOutSample) {
				return false
			}
			st.UninjectedPods, st.UninjectedSample, st.OutdatedPods = uninjected, sample, outdated
			st.OptedOutPods, st.OptedOutSample = optedOut, optedOutSample
			return true
		},
	}
	if restart != nil {
		part.Conditions = []metav1.Condition{*restart}
	} else {
		part.Remove = []string{meshv1alpha1.ConditionRestartUninjected}
	}
	return part
}

// restartNext restarts the next workload, unless a restart is in progress.
func (r *Reconciler) restartNext(ctx context.Context, report Report, workloads map[WorkloadRef]client.Object) error {
	rollouts := make([]WorkloadRollout, 0, len(workloads))
	for ref, obj := range workloads {
		restarted := max(r.restarted[obj.GetUID()], restartedGeneration(obj))
		pods := report.Workloads[ref]
		rollouts = append(rollouts, WorkloadRollout{
			Ref:                 ref,
			Generation:          obj.GetGeneration(),
			RestartedGeneration: restarted,
			Complete:            RolloutComplete(obj),
			NeedsRestart:        pods.Uninjected+pods.Outdated > 0,
		})
	}
	live := make(map[types.UID]bool, len(workloads))
	for _, obj := range workloads {
		live[obj.GetUID()] = true
	}
	maps.DeleteFunc(r.restarted, func(uid types.UID, _ int64) bool { return !live[uid] })
	next, ok, blocked := NextRestart(rollouts)
	if blocked != nil {
		log.FromContext(ctx).V(1).Info("waiting for a restart to roll out", "workload", blocked.String())
	}
	if !ok {
		return nil
	}
	obj := workloads[next]
	if err := r.restart(ctx, obj); err != nil {
		switch {
		case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
			// Our copy was stale; the newer one is on its way through the watch.
			return nil
		case apierrors.IsForbidden(err):
			return &restartForbiddenError{workload: next, err: err}
		}
		return fmt.Errorf("restarting %s: %w", next, err)
	}
	pods := report.Workloads[next]
	if r.Recorder != nil {
		r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, ReasonRolloutRestarted, "Restart",
			"restarted so that %d pod(s) get the current capstan sidecar", pods.Uninjected+pods.Outdated)
	}
	log.FromContext(ctx).Info("restarted a workload for sidecar injection", "workload", next.String())
	return nil
}

// restart patches obj's pod template annotation, with an optimistic lock so
// a stale copy never restarts a workload twice.
func (r *Reconciler) restart(ctx context.Context, obj client.Object) error {
	produced, err := Restart(ctx, r.Client, obj, r.now())
	if err != nil {
		return err
	}
	r.restarted[obj.GetUID()] = max(produced, obj.GetGeneration())
	return nil
}

// Restart restarts a Deployment, StatefulSet or DaemonSet as the
// Reconciler does: it patches the pod template annotation
// capstan.dev/restartedAt to at, and capstan.dev/restarted-generation on
// the workload to the generation the patch produces, with an optimistic
// lock (a stale obj gets a conflict). It returns that generation. The
// operator never restarts the workload again at that generation, and waits
// for the rollout before restarting another; capstanctl restart-uninjected
// uses it too.
func Restart(ctx context.Context, c client.Client, obj client.Object, at time.Time) (int64, error) {
	orig, ok := obj.DeepCopyObject().(client.Object)
	if !ok {
		return 0, fmt.Errorf("%T is not a client.Object", obj)
	}
	var tmpl *corev1.PodTemplateSpec
	switch o := obj.(type) {
	case *appsv1.Deployment:
		tmpl = &o.Spec.Template
	case *appsv1.StatefulSet:
		tmpl = &o.Spec.Template
	case *appsv1.DaemonSet:
		tmpl = &o.Spec.Template
	default:
		return 0, fmt.Errorf("cannot restart a %T", obj)
	}
	if tmpl.Annotations == nil {
		tmpl.Annotations = map[string]string{}
	}
	at = at.UTC()
	stamp := at.Format(time.RFC3339)
	if tmpl.Annotations[AnnotationRestartedAt] == stamp {
		// The same second as the last restart: the template must change for
		// the generation to move.
		stamp = at.Format(time.RFC3339Nano)
	}
	tmpl.Annotations[AnnotationRestartedAt] = stamp
	produced := obj.GetGeneration() + 1
	ann := obj.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[AnnotationRestartedGeneration] = strconv.FormatInt(produced, 10)
	obj.SetAnnotations(ann)
	if err := c.Patch(ctx, obj, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return 0, err
	}
	return produced, nil
}

// restartedGeneration reads capstan.dev/restarted-generation (0 when absent or invalid).
func restartedGeneration(obj client.Object) int64 {
	v, err := strconv.ParseInt(strings.TrimSpace(obj.GetAnnotations()[AnnotationRestartedGeneration]), 10, 64)
	if err != nil || v < 0 {
		return 0
	}
	return v
}

// SetupWithManager watches Pods, Namespaces, the Mesh, ReplicaSets and the
// workloads, all mapped to a single cluster-wide request.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	all := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{uninjectedRequest}
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("uninjected").
		Watches(&corev1.Pod{}, all).
		Watches(&corev1.Namespace{}, all).
		Watches(&meshv1alpha1.Mesh{}, all).
		Watches(&appsv1.ReplicaSet{}, all).
		Watches(&appsv1.Deployment{}, all).
		Watches(&appsv1.StatefulSet{}, all).
		Watches(&appsv1.DaemonSet{}, all).
		Complete(r)
}
