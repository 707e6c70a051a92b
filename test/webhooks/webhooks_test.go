package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/test/envtest"
	"github.com/capstanmesh/capstan/webhook/inject"
)

const timeout = 20 * time.Second

// newNamespace creates a namespace with labels for t (labelled at creation,
// so the API server's namespaceSelector sees the labels at once) and deletes
// it when t ends.
func newNamespace(t *testing.T, labels map[string]string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "webhooks-", Labels: labels}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating a namespace: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Client.Delete(context.Background(), ns); client.IgnoreNotFound(err) != nil {
			t.Errorf("deleting namespace %s: %v", ns.Name, err)
		}
	})
	return ns.Name
}

func enabledNamespace(t *testing.T) string {
	return newNamespace(t, map[string]string{meshv1alpha1.LabelInject: meshv1alpha1.InjectEnabled})
}

func newPod(ns string, labels, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "web-", Labels: labels, Annotations: annotations},
		// In a cluster the ServiceAccount admission plugin fills this in
		// before the webhooks run; envtest's API server runs without it, and
		// the injected projected token needs it.
		Spec: corev1.PodSpec{ServiceAccountName: "default", Containers: []corev1.Container{{
			Name: "web", Image: "nginx:1.29",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intOrString("http")},
			}},
		}}},
	}
}

// createPod creates pod and returns it as stored.
func createPod(t *testing.T, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatalf("creating a pod: %v", err)
	}
	stored := &corev1.Pod{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(pod), stored); err != nil {
		t.Fatalf("reading the pod back: %v", err)
	}
	return stored
}

func containerNames(cs []corev1.Container) []string {
	names := make([]string, len(cs))
	for i := range cs {
		names[i] = cs[i].Name
	}
	return names
}

func assertInjected(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	if got, want := containerNames(pod.Spec.InitContainers), []string{"capstan-init", meshv1alpha1.ProxyContainerName}; !slices.Equal(got, want) {
		t.Errorf("init containers %v, want %v", got, want)
	}
	if got := containerNames(pod.Spec.Containers); !slices.Equal(got, []string{"web"}) {
		t.Errorf("containers %v, want [web]", got)
	}
	status, ok, err := inject.ParseStatus(pod)
	if err != nil || !ok {
		t.Fatalf("status annotation: present %v, %v", ok, err)
	}
	if status.Version != inject.DefaultVersion || !slices.Contains(status.InitContainers, meshv1alpha1.ProxyContainerName) {
		t.Errorf("status %+v, want version %s", status, inject.DefaultVersion)
	}
	if pod.Spec.Containers[0].ReadinessProbe.HTTPGet.Port.IntValue() != meshv1alpha1.PortHealth {
		t.Errorf("readiness probe %+v, want it rewritten to port %d", pod.Spec.Containers[0].ReadinessProbe.HTTPGet, meshv1alpha1.PortHealth)
	}
	if !inject.IsInjected(pod) {
		t.Error("inject.IsInjected says no")
	}
}

func assertUntouched(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	if inject.IsInjected(pod) || len(pod.Spec.InitContainers) != 0 || len(pod.Spec.Volumes) > 1 {
		t.Errorf("pod was injected: init containers %v, annotations %v, volumes %d",
			containerNames(pod.Spec.InitContainers), pod.Annotations, len(pod.Spec.Volumes))
	}
	if pod.Spec.Containers[0].ReadinessProbe.HTTPGet.Port.String() != "http" {
		t.Errorf("readiness probe was rewritten: %+v", pod.Spec.Containers[0].ReadinessProbe.HTTPGet)
	}
}

func TestPodInEnabledNamespaceIsInjected(t *testing.T) {
	t.Parallel()
	ns := enabledNamespace(t)
	pod := createPod(t, newPod(ns, nil, map[string]string{meshv1alpha1.AnnotationExcludeInboundPorts: "9000"}))
	assertInjected(t, pod)
	initArgs := strings.Join(pod.Spec.InitContainers[0].Args, " ")
	if !strings.Contains(initArgs, "9000") {
		t.Errorf("capstan-init args %q do not exclude port 9000", initArgs)
	}
	// Injecting an injected pod changes nothing: a copy of the stored pod
	// (as a controller re-creating it would send) comes back the same.
	again := pod.DeepCopy()
	again.ObjectMeta = metav1.ObjectMeta{Namespace: ns, GenerateName: "web-", Labels: pod.Labels, Annotations: pod.Annotations}
	again.Spec.NodeName = ""
	stored := createPod(t, again)
	if got, want := containerNames(stored.Spec.InitContainers), containerNames(pod.Spec.InitContainers); !slices.Equal(got, want) {
		t.Errorf("re-created injected pod has init containers %v, want %v", got, want)
	}
}

func TestPodInPlainNamespaceIsUntouched(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, nil)
	assertUntouched(t, createPod(t, newPod(ns, nil, map[string]string{meshv1alpha1.AnnotationProxyCPU: "lots"})))
}

func TestPodLabelOverridesNamespace(t *testing.T) {
	t.Parallel()
	plain := newNamespace(t, nil)
	assertInjected(t, createPod(t, newPod(plain, map[string]string{meshv1alpha1.LabelInject: "true"}, nil)))
	enabled := enabledNamespace(t)
	assertUntouched(t, createPod(t, newPod(enabled, map[string]string{meshv1alpha1.LabelInject: "false"}, nil)))
}

func TestOperatorNamespaceIsNeverInjected(t *testing.T) {
	t.Parallel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: inject.DefaultOperatorNamespace,
		Labels: map[string]string{meshv1alpha1.LabelInject: meshv1alpha1.InjectEnabled}}}
	// Kept (not deleted) so that -count=N can reuse it: envtest runs no
	// namespace controller, and a Terminating namespace refuses new pods.
	if err := env.Client.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating %s: %v", ns.Name, err)
	}
	assertUntouched(t, createPod(t, newPod(ns.Name, map[string]string{meshv1alpha1.LabelInject: "true"}, nil)))
}

func TestPodWithBadAnnotationsIsRefused(t *testing.T) {
	t.Parallel()
	ns := enabledNamespace(t)
	pod := newPod(ns, nil, map[string]string{
		meshv1alpha1.AnnotationProxyCPU:             "lots",
		meshv1alpha1.AnnotationExcludeOutboundPorts: "70000",
	})
	err := env.Client.Create(context.Background(), pod)
	if err == nil {
		t.Fatal("the pod was created")
	}
	for _, want := range []string{
		`admission webhook "inject.capstan.dev" denied the request`,
		`annotation capstan.dev/exclude-outbound-ports: "70000" is not a port number`,
		`annotation capstan.dev/proxy-cpu: "lots" is not a resource quantity`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if !apierrors.IsForbidden(err) {
		t.Errorf("error %v is not Forbidden", err)
	}
}

// warnings collects the API server's warnings for one client.
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

// take returns the warnings so far and forgets them.
func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.list
	w.list = nil
	return out
}

func warningClient(t *testing.T) (client.Client, *warnings) {
	t.Helper()
	w := &warnings{}
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandler = w
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c, w
}

func policy(ns, name string, annotations map[string]string, od *meshv1alpha1.OutlierDetection) *meshv1alpha1.DestinationPolicy {
	return &meshv1alpha1.DestinationPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations},
		Spec: meshv1alpha1.DestinationPolicySpec{
			Host: "reviews",
			Subsets: []meshv1alpha1.Subset{
				{Name: "v1", Labels: map[string]string{"version": "v1"}},
				{Name: "v2", Labels: map[string]string{"version": "v2"},
					TrafficPolicy: &meshv1alpha1.TrafficPolicy{OutlierDetection: od}},
			},
		},
	}
}

// TestAggressiveOutlierDetection checks the unified "can eject the whole
// pool" threshold (api/validation.WholePoolEjectionPercent) through the real
// API server: maxEjectionPercent 100 with minHealthPercent 0 is refused,
// 99 with minHealthPercent 0 and consecutive5xxErrors 1 are admitted (the
// webhook used to refuse both; a user coming from Istio expects them to pass).
func TestAggressiveOutlierDetection(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, nil)
	c, w := warningClient(t)
	ctx := context.Background()

	err := c.Create(ctx, policy(ns, "refused", nil, &meshv1alpha1.OutlierDetection{
		Consecutive5xxErrors: ptr.To[int32](1), MaxEjectionPercent: ptr.To[int32](100), MinHealthPercent: ptr.To[int32](0),
	}))
	if err == nil {
		t.Fatal("aggressive outlier detection was admitted")
	}
	for _, want := range []string{
		`admission webhook "destinationpolicy.validate.capstan.dev" denied the request`,
		"spec.subsets[1].trafficPolicy.outlierDetection.maxEjectionPercent: Invalid value: 100",
		"can eject every endpoint",
		`annotate the policy capstan.dev/allow-aggressive-ejection: "true"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if !apierrors.IsInvalid(err) {
		t.Errorf("error %v is not Invalid", err)
	}
	w.take()

	// The defaults (5 errors, at most 50% ejected, panic below 50%) pass
	// quietly, and so do settings that keep an endpoint.
	for name, od := range map[string]*meshv1alpha1.OutlierDetection{
		"defaults":   {},
		"keeps-one":  {MaxEjectionPercent: ptr.To[int32](99), MinHealthPercent: ptr.To[int32](0)},
		"one-error":  {Consecutive5xxErrors: ptr.To[int32](1)},
		"with-panic": {MaxEjectionPercent: ptr.To[int32](100), MinHealthPercent: ptr.To[int32](10)},
	} {
		if err := c.Create(ctx, policy(ns, name, nil, od)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if got := w.take(); len(got) != 0 {
			t.Errorf("%s: warnings %q, want none", name, got)
		}
	}

	whole := &meshv1alpha1.OutlierDetection{MaxEjectionPercent: ptr.To[int32](100), MinHealthPercent: ptr.To[int32](0)}
	annotated := policy(ns, "annotated", map[string]string{meshv1alpha1.AnnotationAllowAggressiveEjection: "true"}, whole)
	if err := c.Create(ctx, annotated); err != nil {
		t.Fatalf("annotated policy refused: %v", err)
	}
	got := w.take()
	if len(got) != 1 || !strings.Contains(got[0], "spec.subsets[1].trafficPolicy.outlierDetection.maxEjectionPercent: 100 can eject the whole pool") {
		t.Errorf("warnings %q, want one about maxEjectionPercent", got)
	}

	// Updates: a value already stored is admitted with a warning (so the
	// object can still be edited), a new aggressive setting is refused.
	annotated.Annotations = map[string]string{"team": "reviews"}
	if err := c.Update(ctx, annotated); err != nil {
		t.Fatalf("an update keeping the stored value: %v", err)
	}
	if got := w.take(); len(got) != 1 || !strings.Contains(got[0], "maxEjectionPercent: 100 can eject the whole pool; admitted because it is unchanged") {
		t.Errorf("warnings %q, want one saying the stored value is kept", got)
	}
	annotated.Spec.TrafficPolicy = &meshv1alpha1.TrafficPolicy{OutlierDetection: whole.DeepCopy()}
	if err := c.Update(ctx, annotated); err == nil || !strings.Contains(err.Error(), "spec.trafficPolicy.outlierDetection.maxEjectionPercent: Invalid value: 100") {
		t.Errorf("an update adding another aggressive setting: %v, want refused", err)
	}
}

func route(ns string, dests ...meshv1alpha1.Destination) *meshv1alpha1.MeshRoute {
	return &meshv1alpha1.MeshRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "reviews"},
		Spec: meshv1alpha1.MeshRouteSpec{
			Hosts: []string{"reviews"},
			HTTP:  []meshv1alpha1.HTTPRule{{Route: dests}},
		},
	}
}

func TestUnknownSubsetIsWarned(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, nil)
	c, w := warningClient(t)
	ctx := context.Background()
	if err := c.Create(ctx, policy(ns, "reviews", nil, nil)); err != nil {
		t.Fatal(err)
	}
	mr := route(ns,
		meshv1alpha1.Destination{Host: "reviews", Subset: "v1", Weight: ptr.To[int32](50)},
		meshv1alpha1.Destination{Host: "reviews", Subset: "v3", Weight: ptr.To[int32](50)})
	want := fmt.Sprintf(`spec.http[0].route[1].subset: subset "v3" of host reviews is not defined by DestinationPolicy %s/reviews (subsets: v1, v2)`, ns)
	// The webhook reads DestinationPolicies from the manager's cache: wait
	// (with dry runs) until it has the new policy.
	envtest.Eventually(t, timeout, func() error {
		w.take()
		if err := c.Create(ctx, mr.DeepCopy(), client.DryRunAll); err != nil {
			return err
		}
		if got := w.take(); !slices.Equal(got, []string{want}) {
			return fmt.Errorf("warnings %q, want [%q]", got, want)
		}
		return nil
	})
	if err := c.Create(ctx, mr); err != nil {
		t.Fatalf("a route naming an unknown subset must be admitted: %v", err)
	}
	if got := w.take(); !slices.Equal(got, []string{want}) {
		t.Errorf("warnings %q, want [%q]", got, want)
	}

	other := route(ns, meshv1alpha1.Destination{Host: "ratings", Subset: "v1"})
	other.Name = "ratings"
	if err := c.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	if got := w.take(); len(got) != 1 || !strings.Contains(got[0], fmt.Sprintf("no DestinationPolicy configures ratings.%s.svc.cluster.local", ns)) {
		t.Errorf("warnings %q, want one saying no policy configures ratings", got)
	}
}

func TestUnknownAnnotationIsWarned(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, nil)
	c, w := warningClient(t)
	ctx := context.Background()
	typo := map[string]string{"capstan.dev/allow-aggressive-ejections": "true", "example.com/other": "x"}
	want := "metadata.annotations[capstan.dev/allow-aggressive-ejections]: unknown Capstan annotation"
	for _, obj := range []client.Object{
		&meshv1alpha1.PeerAuthentication{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pa", Annotations: typo}},
		policy(ns, "dp", typo, nil),
		&meshv1alpha1.MeshRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mr", Annotations: typo},
			Spec: meshv1alpha1.MeshRouteSpec{Hosts: []string{"reviews"}, HTTP: []meshv1alpha1.HTTPRule{{
				Route: []meshv1alpha1.Destination{{Host: "reviews"}}}}}},
		// The Mesh is cluster-wide: a dry run leaves the other tests' pods alone.
		&meshv1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: meshv1alpha1.MeshName, Annotations: typo}},
	} {
		kind := fmt.Sprintf("%T", obj)
		if err := c.Create(ctx, obj, client.DryRunAll); err != nil {
			t.Errorf("%s: %v", kind, err)
			continue
		}
		if got := w.take(); len(got) != 1 || !strings.Contains(got[0], want) {
			t.Errorf("%s: warnings %q, want one containing %q", kind, got, want)
		}
	}
}

func TestWebhookConfigurationAsInstalled(t *testing.T) {
	raw, err := json.Marshal(env.Webhooks.MutatingWebhooks[0].Webhooks)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"failurePolicy":"Fail"`, `"sideEffects":"None"`, `"capstan.dev/inject"`, `/mutate-v1-pod"`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("installed mutating webhooks lack %s: %s", want, raw)
		}
	}
}

func intOrString(name string) intstr.IntOrString { return intstr.FromString(name) }

// TestMeshConfiguresTheProxy is not parallel: the Mesh is cluster-wide, and
// parallel tests start only after it has finished (none of them depends on
// the proxy image or mode).
func TestMeshConfiguresTheProxy(t *testing.T) {
	ctx := context.Background()
	mesh := &meshv1alpha1.Mesh{
		ObjectMeta: metav1.ObjectMeta{Name: meshv1alpha1.MeshName},
		Spec: meshv1alpha1.MeshSpec{
			Proxy:     meshv1alpha1.ProxyConfig{Image: "example.com/envoy:custom"},
			Injection: meshv1alpha1.Injection{NativeSidecar: ptr.To(false)},
		},
	}
	ns := enabledNamespace(t)
	if err := env.Client.Create(ctx, mesh); err != nil {
		t.Fatalf("creating the Mesh: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Client.Delete(ctx, mesh); client.IgnoreNotFound(err) != nil {
			t.Errorf("deleting the Mesh: %v", err)
		}
		// Before the parallel tests start, wait until the handler no longer
		// sees the Mesh (defaults again: the proxy is a native sidecar).
		envtest.Eventually(t, timeout, func() error {
			pod := newPod(ns, nil, nil)
			if err := env.Client.Create(ctx, pod, client.DryRunAll); err != nil {
				return err
			}
			if !slices.Contains(containerNames(pod.Spec.InitContainers), meshv1alpha1.ProxyContainerName) {
				return errors.New("the handler still uses the deleted Mesh")
			}
			return nil
		})
	})
	// The handler reads the Mesh from the manager's cache: wait (with dry
	// runs) until it has it.
	envtest.Eventually(t, timeout, func() error {
		pod := newPod(ns, nil, nil)
		if err := env.Client.Create(ctx, pod, client.DryRunAll); err != nil {
			return err
		}
		if got := containerNames(pod.Spec.Containers); !slices.Equal(got, []string{meshv1alpha1.ProxyContainerName, "web"}) {
			return fmt.Errorf("containers %v, want the proxy first (non-native mode)", got)
		}
		return nil
	})
	pod := createPod(t, newPod(ns, nil, nil))
	if got := containerNames(pod.Spec.InitContainers); !slices.Equal(got, []string{"capstan-init"}) {
		t.Errorf("init containers %v, want [capstan-init]", got)
	}
	if img := pod.Spec.Containers[0].Image; img != "example.com/envoy:custom" {
		t.Errorf("proxy image %q, want the Mesh's", img)
	}
}
