package uninjected

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/controllers"
	"github.com/capstanmesh/capstan/controllers/uninjected"
	"github.com/capstanmesh/capstan/test/envtest"
)

const settle = 30 * time.Second

func podTemplate(app string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1"}}},
	}
}

func controllerRef(apiVersion, kind string, owner client.Object) []metav1.OwnerReference {
	return []metav1.OwnerReference{{
		APIVersion: apiVersion, Kind: kind, Name: owner.GetName(), UID: owner.GetUID(),
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
	}}
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

// runningPod creates a pod and sets its phase to Running, as a kubelet would.
func runningPod(t *testing.T, ns, name string, owners []metav1.OwnerReference, mut func(*corev1.Pod)) *corev1.Pod {
	t.Helper()
	tmpl := podTemplate(name)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: tmpl.Labels, OwnerReferences: owners}, Spec: tmpl.Spec}
	if mut != nil {
		mut(pod)
	}
	create(t, pod)
	pod.Status.Phase = corev1.PodRunning
	if err := env.Client.Status().Update(context.Background(), pod); err != nil {
		t.Fatalf("setting pod %s Running: %v", name, err)
	}
	return pod
}

func getMesh() (*meshv1alpha1.Mesh, error) {
	m := &meshv1alpha1.Mesh{}
	return m, env.Client.Get(context.Background(), client.ObjectKey{Name: meshv1alpha1.MeshName}, m)
}

// waitUninjected polls until the Mesh status reports want uninjected pods.
func waitUninjected(t *testing.T, want int32) *meshv1alpha1.Mesh {
	t.Helper()
	var m *meshv1alpha1.Mesh
	envtest.Eventually(t, settle, func() error {
		var err error
		if m, err = getMesh(); err != nil {
			return err
		}
		if m.Status.UninjectedPods != want {
			return fmt.Errorf("status.uninjectedPods %d, want %d", m.Status.UninjectedPods, want)
		}
		return nil
	})
	return m
}

func events(t *testing.T, ns, kind, name, reason string) []eventsv1.Event {
	t.Helper()
	list := &eventsv1.EventList{}
	if err := env.Client.List(context.Background(), list, client.InNamespace(ns)); err != nil {
		t.Fatalf("listing events: %v", err)
	}
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Kind == kind && e.Regarding.Name == name && (reason == "" || e.Reason == reason) {
			out = append(out, e)
		}
	}
	return out
}

func restartedAt(obj client.Object) string {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return o.Spec.Template.Annotations[uninjected.AnnotationRestartedAt]
	case *appsv1.StatefulSet:
		return o.Spec.Template.Annotations[uninjected.AnnotationRestartedAt]
	case *batchv1.Job:
		return o.Spec.Template.Annotations[uninjected.AnnotationRestartedAt]
	}
	return ""
}

func get(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatal(err)
	}
}

// TestPodsThatPredateTheLabel creates workloads and their pods in a plain
// namespace, labels it for injection, and checks the report (Mesh status,
// Events) and then the one-at-a-time restarts.
func TestPodsThatPredateTheLabel(t *testing.T) {
	ctx := context.Background()
	ns := env.NewNamespace(t)

	// A Deployment with its ReplicaSet and pod, a StatefulSet with its pod,
	// a Job with its pod, a bare pod, an opted-out pod, a host-network pod
	// and a pod with an old sidecar, all created before the label.
	web := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: podTemplate("web"),
		},
	}
	create(t, web)
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-5d8f", OwnerReferences: controllerRef("apps/v1", "Deployment", web)},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: podTemplate("web"),
		},
	}
	create(t, rs)
	runningPod(t, ns, "web-5d8f-abcde", controllerRef("apps/v1", "ReplicaSet", rs), func(p *corev1.Pod) { p.Labels = map[string]string{"app": "web"} })

	db := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To[int32](1), ServiceName: "db",
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			Template: podTemplate("db"),
		},
	}
	create(t, db)
	runningPod(t, ns, "db-0", controllerRef("apps/v1", "StatefulSet", db), func(p *corev1.Pod) { p.Labels = map[string]string{"app": "db"} })

	jobTmpl := podTemplate("batch")
	jobTmpl.Spec.RestartPolicy = corev1.RestartPolicyNever
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "batch"}, Spec: batchv1.JobSpec{Template: jobTmpl}}
	create(t, job)
	runningPod(t, ns, "batch-xyz12", controllerRef("batch/v1", "Job", job), nil)

	bare := runningPod(t, ns, "bare", nil, nil)
	runningPod(t, ns, "opted-out", nil, func(p *corev1.Pod) { p.Labels[meshv1alpha1.LabelInject] = "false" })
	runningPod(t, ns, "host", nil, func(p *corev1.Pod) { p.Spec.HostNetwork = true })
	runningPod(t, ns, "old-sidecar", nil, func(p *corev1.Pod) {
		sidecar(p)
		p.Annotations[meshv1alpha1.AnnotationStatus] = `{"version":"v0"}`
	})

	// Rollouts of the workloads' current generation are complete, as their
	// controllers would have reported.
	get(t, web)
	web.Status.ObservedGeneration = web.Generation
	if err := env.Client.Status().Update(ctx, web); err != nil {
		t.Fatal(err)
	}
	get(t, db)
	db.Status.ObservedGeneration = db.Generation
	if err := env.Client.Status().Update(ctx, db); err != nil {
		t.Fatal(err)
	}

	mesh := &meshv1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: meshv1alpha1.MeshName}}
	create(t, mesh)
	t.Cleanup(func() {
		if err := env.Client.Delete(context.Background(), mesh); client.IgnoreNotFound(err) != nil {
			t.Errorf("deleting the Mesh: %v", err)
		}
	})

	env.StartManager(t, func(mgr ctrl.Manager) error {
		return (&uninjected.Reconciler{
			Client:   mgr.GetClient(),
			Recorder: mgr.GetEventRecorder(controllers.EventSource),
			Version:  "v1",
		}).SetupWithManager(mgr)
	}, ns)

	// Label the namespace: the pods now predate injection.
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	get(t, nsObj)
	nsObj.Labels[meshv1alpha1.LabelInject] = meshv1alpha1.InjectEnabled
	if err := env.Client.Update(ctx, nsObj); err != nil {
		t.Fatal(err)
	}

	m := waitUninjected(t, 4)
	wantSample := []string{ns + "/bare", ns + "/batch-xyz12", ns + "/db-0", ns + "/web-5d8f-abcde"}
	if !slices.Equal(m.Status.UninjectedSample, wantSample) || m.Status.OutdatedPods != 1 {
		t.Errorf("status sample %v outdated %d, want %v and 1", m.Status.UninjectedSample, m.Status.OutdatedPods, wantSample)
	}
	envtest.Eventually(t, settle, func() error {
		for _, w := range []struct{ kind, name string }{{"Deployment", "web"}, {"StatefulSet", "db"}} {
			evs := events(t, ns, w.kind, w.name, uninjected.ReasonPodsWithoutSidecar)
			if len(evs) == 0 {
				return fmt.Errorf("no %s Event for %s %s", uninjected.ReasonPodsWithoutSidecar, w.kind, w.name)
			}
			if evs[0].Type != corev1.EventTypeWarning {
				return fmt.Errorf("%s %s: Event type %s, want Warning", w.kind, w.name, evs[0].Type)
			}
		}
		return nil
	})

	// Restarts are off: nothing is patched. Two more reconciles (each
	// observed through the status) make sure of it.
	runningPod(t, ns, "late-1", nil, nil)
	waitUninjected(t, 5)
	runningPod(t, ns, "late-2", nil, nil)
	waitUninjected(t, 6)
	get(t, web)
	if restartedAt(web) != "" || web.Generation != 1 {
		t.Fatalf("Deployment restarted (generation %d) with restartUninjected false", web.Generation)
	}

	// Turn restarts on: the Deployment comes first.
	envtest.Eventually(t, settle, func() error {
		m, err := getMesh()
		if err != nil {
			return err
		}
		m.Spec.Injection.RestartUninjected = true
		return env.Client.Update(ctx, m)
	})
	envtest.Eventually(t, settle, func() error {
		get(t, web)
		if v := restartedAt(web); v == "" {
			return fmt.Errorf("Deployment template has no %s", uninjected.AnnotationRestartedAt)
		}
		return nil
	})
	if _, err := time.Parse(time.RFC3339, restartedAt(web)); err != nil {
		t.Errorf("%s: %v", uninjected.AnnotationRestartedAt, err)
	}
	if web.Generation != 2 || web.Annotations[uninjected.AnnotationRestartedGeneration] != "2" {
		t.Errorf("Deployment generation %d, %s %q; want 2 and \"2\"", web.Generation,
			uninjected.AnnotationRestartedGeneration, web.Annotations[uninjected.AnnotationRestartedGeneration])
	}
	webRestartedAt := restartedAt(web)

	// Its rollout is in progress (observedGeneration 1 < generation 2): the
	// StatefulSet waits, across two more reconciles.
	runningPod(t, ns, "late-3", nil, nil)
	waitUninjected(t, 7)
	runningPod(t, ns, "late-4", nil, nil)
	waitUninjected(t, 8)
	get(t, db)
	if restartedAt(db) != "" || db.Generation != 1 {
		t.Fatalf("StatefulSet restarted (generation %d) while the Deployment's rollout is in progress", db.Generation)
	}
	// Events are recorded once per workload and state, not per reconcile.
	if evs := events(t, ns, "StatefulSet", "db", uninjected.ReasonPodsWithoutSidecar); len(evs) != 1 {
		t.Errorf("%d %s Events for the StatefulSet, want 1", len(evs), uninjected.ReasonPodsWithoutSidecar)
	}

	// The Deployment's rollout completes: the StatefulSet is next.
	get(t, web)
	web.Status.ObservedGeneration = web.Generation
	if err := env.Client.Status().Update(ctx, web); err != nil {
		t.Fatal(err)
	}
	envtest.Eventually(t, settle, func() error {
		get(t, db)
		if restartedAt(db) == "" {
			return fmt.Errorf("StatefulSet template has no %s", uninjected.AnnotationRestartedAt)
		}
		return nil
	})
	if db.Generation != 2 {
		t.Errorf("StatefulSet generation %d, want 2", db.Generation)
	}

	// Two more reconciles: the Deployment is not restarted twice at one
	// generation, the bare pod and the Job are never touched.
	runningPod(t, ns, "late-5", nil, nil)
	waitUninjected(t, 9)
	runningPod(t, ns, "late-6", nil, nil)
	waitUninjected(t, 10)
	get(t, web)
	if web.Generation != 2 || restartedAt(web) != webRestartedAt {
		t.Errorf("Deployment at generation %d, restartedAt %q: restarted twice", web.Generation, restartedAt(web))
	}
	get(t, job)
	if restartedAt(job) != "" || job.Generation != 1 {
		t.Errorf("Job touched: generation %d, annotations %v", job.Generation, job.Spec.Template.Annotations)
	}
	bareNow := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bare"}}
	get(t, bareNow)
	if bareNow.ResourceVersion != bare.ResourceVersion {
		t.Errorf("bare pod changed: resourceVersion %s, was %s", bareNow.ResourceVersion, bare.ResourceVersion)
	}
	envtest.Eventually(t, settle, func() error {
		for _, w := range []struct{ kind, name string }{{"Deployment", "web"}, {"StatefulSet", "db"}} {
			if len(events(t, ns, w.kind, w.name, uninjected.ReasonRolloutRestarted)) != 1 {
				return fmt.Errorf("want one %s Event for %s %s", uninjected.ReasonRolloutRestarted, w.kind, w.name)
			}
		}
		return nil
	})
	for _, name := range []string{"batch", "bare"} {
		for _, kind := range []string{"Job", "Pod"} {
			if evs := events(t, ns, kind, name, ""); len(evs) != 0 {
				t.Errorf("%d Events for %s %s, want none", len(evs), kind, name)
			}
		}
	}
}
