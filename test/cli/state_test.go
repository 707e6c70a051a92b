package cli

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/test/envtest"
)

// state is the seed's four failure cases, built in the API server:
// shop (injection enabled) has a Deployment whose running pod predates
// injection (web), a STRICT namespace policy, cart called by a CronJob of
// batch (not injected), a 90/10 canary of reviews exposed by a NodePort
// Service and an Ingress, and outlier detection that can eject all of
// reviews (admitted with the annotation).
type state struct {
	shop, batch string
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, obj := range objs {
		if err := env.Client.Create(context.Background(), obj); err != nil {
			t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
		}
	}
}

// running creates pod and sets its phase to Running (no kubelet here).
func running(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	create(t, pod)
	pod.Status.Phase = corev1.PodRunning
	if err := env.Client.Status().Update(context.Background(), pod); err != nil {
		t.Fatalf("setting pod %s Running: %v", pod.Name, err)
	}
}

func labelNamespace(t *testing.T, name string) {
	t.Helper()
	ns := &corev1.Namespace{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Name: name}, ns); err != nil {
		t.Fatal(err)
	}
	ns.Labels[meshv1alpha1.LabelInject] = meshv1alpha1.InjectEnabled
	if err := env.Client.Update(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
}

func containers(args ...string) []corev1.Container {
	return []corev1.Container{{Name: "app", Image: "app", Args: args}}
}

func meshedPod(ns, name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: meshv1alpha1.ProxyContainerName, Image: "envoy", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}},
			Containers:     containers()}}
}

func service(ns, name string, typ corev1.ServiceType, selector map[string]string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{Type: typ, Selector: selector, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
}

func newState(t *testing.T) state {
	t.Helper()
	s := state{shop: env.NewNamespace(t), batch: env.NewNamespace(t)}
	s.uninjectedDeployment(t, "web")
	s.strictWithCronJobCaller(t)
	s.canary(t)
	labelNamespace(t, s.shop) // after the pods: web's pod predates injection
	return s
}

// uninjectedDeployment creates a Deployment, its ReplicaSet and a running
// pod without the sidecar, linked by controller references.
func (s state) uninjectedDeployment(t *testing.T, name string) {
	t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: s.shop, Name: name},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: containers()}}}}
	create(t, d)
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: s.shop, Name: name + "-1",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: name, UID: d.UID, Controller: ptr.To(true)}}},
		Spec: appsv1.ReplicaSetSpec{Selector: d.Spec.Selector, Template: d.Spec.Template}}
	create(t, rs)
	running(t, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: s.shop, Name: name + "-1-a", Labels: labels,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: ptr.To(true)}}},
		Spec: corev1.PodSpec{Containers: containers()}})
}

func (s state) strictWithCronJobCaller(t *testing.T) {
	t.Helper()
	running(t, meshedPod(s.shop, "cart-0", map[string]string{"app": "cart"}))
	create(t,
		service(s.shop, "cart", corev1.ServiceTypeClusterIP, map[string]string{"app": "cart"}),
		&meshv1alpha1.PeerAuthentication{ObjectMeta: metav1.ObjectMeta{Namespace: s.shop, Name: "strict"},
			Spec: meshv1alpha1.PeerAuthenticationSpec{MTLS: meshv1alpha1.PeerMTLS{Mode: meshv1alpha1.PeerMTLSStrict}}},
		&batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: s.batch, Name: "report"},
			Spec: batchv1.CronJobSpec{Schedule: "0 2 * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyOnFailure,
					Containers: containers("curl", "http://cart."+s.shop+"/report")}}}}}},
	)
}

func (s state) canary(t *testing.T) {
	t.Helper()
	running(t, meshedPod(s.shop, "reviews-v1", map[string]string{"app": "reviews", "version": "v1"}))
	running(t, meshedPod(s.shop, "reviews-v2", map[string]string{"app": "reviews", "version": "v2"}))
	create(t,
		service(s.shop, "reviews", corev1.ServiceTypeClusterIP, map[string]string{"app": "reviews"}),
		service(s.shop, "reviews-public", corev1.ServiceTypeNodePort, map[string]string{"app": "reviews", "version": "v2"}),
		&networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: s.shop, Name: "www"},
			Spec: networkingv1.IngressSpec{DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
				Name: "reviews", Port: networkingv1.ServiceBackendPort{Number: 80}}}}},
		&meshv1alpha1.MeshRoute{ObjectMeta: metav1.ObjectMeta{Namespace: s.shop, Name: "canary"},
			Spec: meshv1alpha1.MeshRouteSpec{Hosts: []string{"reviews"}, HTTP: []meshv1alpha1.HTTPRule{{Route: []meshv1alpha1.Destination{
				{Host: "reviews", Subset: "v1", Weight: ptr.To[int32](90)}, {Host: "reviews", Subset: "v2", Weight: ptr.To[int32](10)}}}}}},
		&meshv1alpha1.DestinationPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: s.shop, Name: "reviews",
			Annotations: map[string]string{meshv1alpha1.AnnotationAllowAggressiveEjection: "true"}},
			Spec: meshv1alpha1.DestinationPolicySpec{Host: "reviews",
				Subsets: []meshv1alpha1.Subset{{Name: "v1", Labels: map[string]string{"version": "v1"}}, {Name: "v2", Labels: map[string]string{"version": "v2"}}},
				TrafficPolicy: &meshv1alpha1.TrafficPolicy{OutlierDetection: &meshv1alpha1.OutlierDetection{
					MaxEjectionPercent: ptr.To[int32](100), MinHealthPercent: ptr.To[int32](0)}}}},
	)
}

// installGatewayAPI installs a minimal HTTPRoute CRD of Gateway API
// release v1.0.0 and one HTTPRoute in ns; it removes the CRD when t ends.
func installGatewayAPI(t *testing.T, ns string) {
	t.Helper()
	crd := looseCRD("gateway.networking.k8s.io", "HTTPRoute", "httproutes")
	crd.Annotations = map[string]string{"gateway.networking.k8s.io/bundle-version": "v1.0.0",
		"api-approved.kubernetes.io": "unapproved, a Capstan test fixture"}
	installCRD(t, crd)
	route := &unstructured.Unstructured{}
	route.SetAPIVersion("gateway.networking.k8s.io/v1")
	route.SetKind("HTTPRoute")
	route.SetNamespace(ns)
	route.SetName("web")
	envtest.Eventually(t, 30*time.Second, func() error { return env.Client.Create(context.Background(), route) })
}
