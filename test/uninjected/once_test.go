package uninjected

import (
	"context"
	"fmt"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/controllers/uninjected"
)

// countingRecorder counts Events by "namespace/name reason". The API
// server cannot tell a repeated Event from a single one (the recorder folds
// repeats into a series), so this test counts what the reconciler records.
type countingRecorder struct {
	mu     sync.Mutex
	counts map[string]int
}

func (c *countingRecorder) Eventf(regarding, _ runtime.Object, _, reason, _, _ string, _ ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[string]int{}
	}
	o := regarding.(client.Object)
	c.counts[o.GetNamespace()+"/"+o.GetName()+" "+reason]++
}

func (c *countingRecorder) AnnotatedEventf(regarding, related runtime.Object, _ map[string]string, eventtype, reason, action, note string, args ...any) {
	c.Eventf(regarding, related, eventtype, reason, action, note, args...)
}

func (c *countingRecorder) count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[key]
}

// TestReportsOnceAndWritesOnlyChanges reconciles again and again and checks
// that each workload gets one Event per state and that an unchanged Mesh
// status is not rewritten.
func TestReportsOnceAndWritesOnlyChanges(t *testing.T) {
	ctx := context.Background()
	ns := env.NewNamespace(t)
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	get(t, nsObj)
	nsObj.Labels[meshv1alpha1.LabelInject] = meshv1alpha1.InjectEnabled
	if err := env.Client.Update(ctx, nsObj); err != nil {
		t.Fatal(err)
	}
	web := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: podTemplate("web"),
		},
	}
	create(t, web)
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-1", OwnerReferences: controllerRef("apps/v1", "Deployment", web)},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: podTemplate("web"),
		},
	}
	create(t, rs)
	runningPod(t, ns, "web-1-a", controllerRef("apps/v1", "ReplicaSet", rs), func(p *corev1.Pod) { p.Labels = map[string]string{"app": "web"} })
	runningPod(t, ns, "web-1-b", controllerRef("apps/v1", "ReplicaSet", rs), func(p *corev1.Pod) { p.Labels = map[string]string{"app": "web"} })

	mesh := &meshv1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: meshv1alpha1.MeshName}}
	create(t, mesh)
	t.Cleanup(func() {
		if err := env.Client.Delete(context.Background(), mesh); client.IgnoreNotFound(err) != nil {
			t.Errorf("deleting the Mesh: %v", err)
		}
	})

	rec := &countingRecorder{}
	// Count status writes: the API server drops no-op writes without moving
	// the resourceVersion, so that alone would not tell.
	var statusWrites int
	direct, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	c := interceptor.NewClient(direct, interceptor.Funcs{
		SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
			statusWrites++
			return c.SubResource(sub).Update(ctx, obj, opts...)
		},
	})
	r := &uninjected.Reconciler{Client: c, Recorder: rec, Version: "v1"}
	reconcile := func() {
		t.Helper()
		if _, err := r.Reconcile(ctx, ctrl.Request{}); err != nil {
			t.Fatal(err)
		}
	}
	reconcile()
	first, err := getMesh()
	if err != nil {
		t.Fatal(err)
	}
	// Other tests' namespaces may still hold pods, so at least ours.
	if first.Status.UninjectedPods < 2 {
		t.Fatalf("status.uninjectedPods %d, want at least 2", first.Status.UninjectedPods)
	}
	for range 5 {
		reconcile()
	}
	after, err := getMesh()
	if err != nil {
		t.Fatal(err)
	}
	if statusWrites != 1 {
		t.Errorf("%d Mesh status writes after 6 reconciles, want 1", statusWrites)
	}
	if after.ResourceVersion != first.ResourceVersion {
		t.Errorf("Mesh resourceVersion moved from %s to %s: an unchanged status was written", first.ResourceVersion, after.ResourceVersion)
	}
	key := fmt.Sprintf("%s/web %s", ns, uninjected.ReasonPodsWithoutSidecar)
	if n := rec.count(key); n != 1 {
		t.Errorf("%d Events %q after 6 reconciles, want 1", n, key)
	}

	// A new generation is a new state: one more Event, then quiet again.
	get(t, web)
	web.Spec.Template.Annotations = map[string]string{"example.com/edit": "1"}
	if err := env.Client.Update(ctx, web); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		reconcile()
	}
	if n := rec.count(key); n != 2 {
		t.Errorf("%d Events %q after a new generation, want 2", n, key)
	}
}
