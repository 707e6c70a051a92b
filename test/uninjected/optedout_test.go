package uninjected

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/controllers"
	"github.com/capstanmesh/capstan/controllers/uninjected"
	"github.com/capstanmesh/capstan/test/envtest"
	"github.com/capstanmesh/capstan/test/rbac"
)

// sidecar makes p look injected by version v1: the status annotation, the
// containers and the volumes the injector adds.
func sidecar(p *corev1.Pod) {
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	p.Annotations[meshv1alpha1.AnnotationStatus] = `{"version":"v1","initContainers":["capstan-init","capstan-proxy"],"containers":[],"volumes":[]}`
	p.Spec.InitContainers = append([]corev1.Container{
		{Name: "capstan-init", Image: "example.com/capstan-init:1"},
		{Name: meshv1alpha1.ProxyContainerName, Image: "example.com/envoy:1", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
			SecurityContext: &corev1.SecurityContext{RunAsUser: ptr.To[int64](meshv1alpha1.ProxyUID)}},
	}, p.Spec.InitContainers...)
}

// TestOptedOutPodsAreReported checks that pods that opt out of capture in
// an injection-enabled namespace are counted in Mesh.status.optedOutPods,
// listed in optedOutSample, and get a Warning Event saying how; and that a
// pod whose capstan.dev/status annotation has no sidecar behind it counts as
// uninjected, not as injected.
func TestOptedOutPodsAreReported(t *testing.T) {
	ctx := context.Background()
	ns := env.NewNamespace(t)
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	get(t, nsObj)
	nsObj.Labels[meshv1alpha1.LabelInject] = meshv1alpha1.InjectEnabled
	if err := env.Client.Update(ctx, nsObj); err != nil {
		t.Fatal(err)
	}
	runningPod(t, ns, "label-false", nil, func(p *corev1.Pod) { p.Labels[meshv1alpha1.LabelInject] = "false" })
	runningPod(t, ns, "all-outbound", nil, func(p *corev1.Pod) {
		sidecar(p)
		p.Annotations[meshv1alpha1.AnnotationExcludeOutboundIPRanges] = "0.0.0.0/0"
	})
	runningPod(t, ns, "as-proxy-uid", nil, func(p *corev1.Pod) {
		sidecar(p)
		p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](meshv1alpha1.ProxyUID)}
	})
	runningPod(t, ns, "partly-excluded", nil, func(p *corev1.Pod) {
		sidecar(p)
		p.Annotations[meshv1alpha1.AnnotationExcludeOutboundIPRanges] = "10.0.0.0/8"
	})
	runningPod(t, ns, "forged-status", nil, func(p *corev1.Pod) {
		p.Annotations = map[string]string{meshv1alpha1.AnnotationStatus: `{"version":"v1","initContainers":["capstan-init","capstan-proxy"]}`}
	})

	mesh := &meshv1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: meshv1alpha1.MeshName}}
	create(t, mesh)
	t.Cleanup(func() {
		if err := env.Client.Delete(context.Background(), mesh); client.IgnoreNotFound(err) != nil {
			t.Errorf("deleting the Mesh: %v", err)
		}
	})
	env.StartManager(t, func(mgr ctrl.Manager) error {
		return (&uninjected.Reconciler{
			Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder(controllers.EventSource), Version: "v1",
		}).SetupWithManager(mgr)
	}, ns)

	wantOptedOut := []string{ns + "/all-outbound", ns + "/as-proxy-uid", ns + "/label-false"}
	envtest.Eventually(t, settle, func() error {
		m, err := getMesh()
		if err != nil {
			return err
		}
		if m.Status.OptedOutPods != 3 || !slices.Equal(m.Status.OptedOutSample, wantOptedOut) {
			return fmt.Errorf("status.optedOutPods %d, sample %v; want 3, %v", m.Status.OptedOutPods, m.Status.OptedOutSample, wantOptedOut)
		}
		if m.Status.UninjectedPods != 1 || !slices.Equal(m.Status.UninjectedSample, []string{ns + "/forged-status"}) {
			return fmt.Errorf("status.uninjectedPods %d, sample %v; want the forged-status pod", m.Status.UninjectedPods, m.Status.UninjectedSample)
		}
		return nil
	})
	wantNotes := map[string]string{
		"label-false":  "pod label capstan.dev/inject=false",
		"all-outbound": `capstan.dev/exclude-outbound-ip-ranges "0.0.0.0/0" excludes every IPv4 destination`,
		"as-proxy-uid": "spec.securityContext.runAsUser (inherited by spec.containers[0]) is 1337",
	}
	envtest.Eventually(t, settle, func() error {
		for name, want := range wantNotes {
			evs := events(t, ns, "Pod", name, uninjected.ReasonPodOptedOut)
			if len(evs) != 1 {
				return fmt.Errorf("%d %s Events on pod %s, want 1", len(evs), uninjected.ReasonPodOptedOut, name)
			}
			if evs[0].Type != corev1.EventTypeWarning || !strings.Contains(evs[0].Note, want) {
				return fmt.Errorf("pod %s: %s Event %q, want a Warning containing %q", name, evs[0].Type, evs[0].Note, want)
			}
		}
		return nil
	})
	for _, name := range []string{"partly-excluded", "forged-status"} {
		if evs := events(t, ns, "Pod", name, uninjected.ReasonPodOptedOut); len(evs) != 0 {
			t.Errorf("%d %s Events on pod %s, want none", len(evs), uninjected.ReasonPodOptedOut, name)
		}
	}
}

// TestRestartWaitsForPermission runs the reconciler as the operator's
// ServiceAccount bound to the roles of config/rbac (impersonated), with
// Mesh.spec.injection.restartUninjected on: without the restarter component
// it reports the pods, leaves the Deployment alone, and says why on the Mesh
// (condition RestartUninjected False, one Warning Event); once the component's
// binding exists, it restarts the Deployment and the condition turns True.
func TestRestartWaitsForPermission(t *testing.T) {
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
	web.Status.ObservedGeneration = web.Generation
	if err := env.Client.Status().Update(ctx, web); err != nil {
		t.Fatal(err)
	}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-1", OwnerReferences: controllerRef("apps/v1", "Deployment", web)},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: podTemplate("web"),
		},
	}
	create(t, rs)
	runningPod(t, ns, "web-1-a", controllerRef("apps/v1", "ReplicaSet", rs), func(p *corev1.Pod) { p.Labels = map[string]string{"app": "web"} })
	mesh := &meshv1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: meshv1alpha1.MeshName},
		Spec: meshv1alpha1.MeshSpec{Injection: meshv1alpha1.Injection{RestartUninjected: true}}}
	create(t, mesh)
	t.Cleanup(func() {
		if err := env.Client.Delete(context.Background(), mesh); client.IgnoreNotFound(err) != nil {
			t.Errorf("deleting the Mesh: %v", err)
		}
	})

	operatorNS := env.NewNamespace(t)
	base, err := rbac.Base(env.RepoRoot)
	if err != nil {
		t.Fatal(err)
	}
	installRBAC(t, base, operatorNS)
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: rbac.ServiceAccountUser(operatorNS, base.ServiceAccounts[0].Name)}
	rec := &countingRecorder{}
	// The permission is checked again every 100ms while it is missing, so
	// that the test sees a new binding soon.
	env.StartManagerAs(t, cfg, func(mgr ctrl.Manager) error {
		return (&uninjected.Reconciler{Client: mgr.GetClient(), Recorder: rec, Version: "v1",
			PermissionTTL: 100 * time.Millisecond}).SetupWithManager(mgr)
	}, ns)

	var m *meshv1alpha1.Mesh
	envtest.Eventually(t, settle, func() error {
		var err error
		if m, err = getMesh(); err != nil {
			return err
		}
		cond := meta.FindStatusCondition(m.Status.Conditions, meshv1alpha1.ConditionRestartUninjected)
		if cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != meshv1alpha1.ReasonRestartForbidden ||
			!strings.Contains(cond.Message, uninjected.RestarterClusterRole) {
			return fmt.Errorf("condition %+v, want False/%s naming %s", cond, meshv1alpha1.ReasonRestartForbidden, uninjected.RestarterClusterRole)
		}
		if m.Status.UninjectedPods != 1 {
			return fmt.Errorf("status.uninjectedPods %d, want 1", m.Status.UninjectedPods)
		}
		return nil
	})
	// A few more permission checks (a new one every 100ms) change nothing.
	checked := m.ResourceVersion
	runningPod(t, ns, "bare-1", nil, nil)
	waitUninjected(t, 2)
	runningPod(t, ns, "bare-2", nil, nil)
	waitUninjected(t, 3)
	get(t, web)
	if restartedAt(web) != "" {
		t.Fatal("the Deployment was restarted without the restarter binding")
	}
	forbidden := "/" + meshv1alpha1.MeshName + " " + meshv1alpha1.ReasonRestartForbidden
	if n := rec.count(forbidden); n != 1 {
		t.Errorf("%d %s Events (Mesh at resourceVersion %s, then two more pods), want 1", n, forbidden, checked)
	}

	restarter, err := rbac.Restarter(env.RepoRoot)
	if err != nil {
		t.Fatal(err)
	}
	installRBAC(t, restarter, operatorNS)
	envtest.Eventually(t, settle, func() error {
		get(t, web)
		if restartedAt(web) == "" {
			return fmt.Errorf("the Deployment is not restarted yet")
		}
		return nil
	})
	envtest.Eventually(t, settle, func() error {
		var err error
		if m, err = getMesh(); err != nil {
			return err
		}
		if !meta.IsStatusConditionTrue(m.Status.Conditions, meshv1alpha1.ConditionRestartUninjected) {
			return fmt.Errorf("condition %+v, want True", meta.FindStatusCondition(m.Status.Conditions, meshv1alpha1.ConditionRestartUninjected))
		}
		return nil
	})
	if n := rec.count("/" + meshv1alpha1.MeshName + " " + meshv1alpha1.ReasonRestartPermitted); n != 1 {
		t.Errorf("%d %s Events, want 1", n, meshv1alpha1.ReasonRestartPermitted)
	}

	// restartUninjected off: the condition goes away.
	envtest.Eventually(t, settle, func() error {
		m, err := getMesh()
		if err != nil {
			return err
		}
		m.Spec.Injection.RestartUninjected = false
		return env.Client.Update(ctx, m)
	})
	envtest.Eventually(t, settle, func() error {
		m, err := getMesh()
		if err != nil {
			return err
		}
		if c := meta.FindStatusCondition(m.Status.Conditions, meshv1alpha1.ConditionRestartUninjected); c != nil {
			return fmt.Errorf("condition %+v with restartUninjected false, want none", c)
		}
		return nil
	})
}

func installRBAC(t *testing.T, m rbac.Manifests, namespace string) {
	t.Helper()
	objs, err := rbac.Install(context.Background(), env.Client, m, namespace)
	t.Cleanup(func() {
		if err := rbac.Uninstall(context.Background(), env.Client, objs); err != nil {
			t.Errorf("removing the RBAC: %v", err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}
