package analyze

import (
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

func ns(name string, enabled bool) corev1.Namespace {
	n := corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if enabled {
		n.Labels = map[string]string{meshv1alpha1.LabelInject: meshv1alpha1.InjectEnabled}
	}
	return n
}

// pod is a running pod of ns with labels; sidecar adds the proxy container.
func pod(namespace, name string, sidecar bool, lbls map[string]string, env ...string) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: lbls},
		Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	for _, e := range env {
		p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, corev1.EnvVar{Name: "URL", Value: e})
	}
	if sidecar {
		p.Spec.InitContainers = []corev1.Container{{Name: meshv1alpha1.ProxyContainerName, Image: "envoy"}}
	}
	return p
}

func owned(p corev1.Pod, kind, name string) corev1.Pod {
	api := "apps/v1"
	if kind == KindJob {
		api = "batch/v1"
	}
	p.OwnerReferences = []metav1.OwnerReference{{APIVersion: api, Kind: kind, Name: name, Controller: ptr.To(true)}}
	return p
}

func svc(namespace, name string, typ corev1.ServiceType, sel map[string]string) corev1.Service {
	return corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: corev1.ServiceSpec{Type: typ, Selector: sel, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
}

func strictPA(namespace, name string, sel map[string]string) meshv1alpha1.PeerAuthentication {
	pa := meshv1alpha1.PeerAuthentication{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: meshv1alpha1.PeerAuthenticationSpec{MTLS: meshv1alpha1.PeerMTLS{Mode: meshv1alpha1.PeerMTLSStrict}}}
	if sel != nil {
		pa.Spec.Selector = &meshv1alpha1.WorkloadSelector{MatchLabels: sel}
	}
	return pa
}

func route(namespace, name string, hosts []string, dests ...meshv1alpha1.Destination) meshv1alpha1.MeshRoute {
	return meshv1alpha1.MeshRoute{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: meshv1alpha1.MeshRouteSpec{Hosts: hosts, HTTP: []meshv1alpha1.HTTPRule{{Route: dests}}}}
}

func dest(host, subset string, weight int32) meshv1alpha1.Destination {
	return meshv1alpha1.Destination{Host: host, Subset: subset, Weight: ptr.To(weight)}
}

func policy(namespace, name, host string, subsets map[string]string) meshv1alpha1.DestinationPolicy {
	dp := meshv1alpha1.DestinationPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: meshv1alpha1.DestinationPolicySpec{Host: host}}
	for _, s := range []string{"v1", "v2"} {
		if v, ok := subsets[s]; ok {
			dp.Spec.Subsets = append(dp.Spec.Subsets, meshv1alpha1.Subset{Name: s, Labels: map[string]string{"version": v}})
		}
	}
	return dp
}

func app(name string) map[string]string { return map[string]string{"app": name} }

func appVersion(name, version string) map[string]string {
	return map[string]string{"app": name, "version": version}
}

type want struct {
	code, severity, object string
	contains               []string
}

func TestAnalyzers(t *testing.T) {
	for _, tc := range analyzerCases() {
		t.Run(tc.name, func(t *testing.T) {
			got := Run(&tc.in)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d findings, want %d:\n%s", len(got), len(tc.want), dump(got))
			}
			for i, w := range tc.want {
				f := got[i]
				if f.Code != w.code || string(f.Severity) != w.severity || f.Object.String() != w.object {
					t.Errorf("finding %d: got %s %s %s, want %s %s %s", i, f.Code, f.Severity, f.Object, w.code, w.severity, w.object)
				}
				text := f.Message + "\n" + f.Fix
				for _, s := range w.contains {
					if !strings.Contains(text, s) {
						t.Errorf("finding %d (%s) does not say %q:\n%s", i, f.Code, s, text)
					}
				}
			}
		})
	}
}

func dump(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.Code + " " + string(f.Severity) + " " + f.Object.String() + ": " + f.Message + "\n")
	}
	return b.String()
}

type analyzerCase struct {
	name string
	in   Inputs
	want []want
}

func analyzerCases() []analyzerCase {
	return slices.Concat(uninjectedCases(), strictCases(), bypassCases(), outlierCases(), routeCases(), gatewayCases(), trafficCases())
}

func uninjectedCases() []analyzerCase {
	rs := appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", Controller: ptr.To(true)}}}}
	return []analyzerCase{
		{name: "uninjected pods of a Deployment and a bare pod", in: Inputs{
			Namespaces:  []corev1.Namespace{ns("shop", true)},
			ReplicaSets: []appsv1.ReplicaSet{rs},
			Pods: []corev1.Pod{owned(pod("shop", "web-1-a", false, app("web")), "ReplicaSet", "web-1"),
				pod("shop", "debug", false, nil), pod("shop", "ok", true, nil)},
		}, want: []want{
			{CodeUninjectedPods, "Error", "Deployment shop/web", []string{"kubectl rollout restart deployment/web -n shop", "capstanctl restart-uninjected -n shop", "shop/web-1-a"}},
			{CodeUninjectedPods, "Error", "Pod shop/debug", []string{"kubectl delete pod debug -n shop"}},
		}},
		{name: "pods of a namespace without injection are fine", in: Inputs{
			Namespaces: []corev1.Namespace{ns("plain", false)},
			Pods:       []corev1.Pod{pod("plain", "a", false, nil)},
		}},
		{name: "opted-out and pending pods are not reported", in: Inputs{
			Namespaces: []corev1.Namespace{ns("shop", true)},
			Pods: []corev1.Pod{pod("shop", "out", false, map[string]string{meshv1alpha1.LabelInject: "false"}),
				func() corev1.Pod { p := pod("shop", "new", false, nil); p.Status.Phase = corev1.PodPending; return p }()},
		}},
	}
}

func strictCases() []analyzerCase {
	base := func() Inputs {
		return Inputs{
			Namespaces: []corev1.Namespace{ns("shop", true), ns("batch", false)},
			Pods:       []corev1.Pod{pod("shop", "cart-0", true, app("cart"))},
			Services:   []corev1.Service{svc("shop", "cart", corev1.ServiceTypeClusterIP, app("cart"))},
			CronJobs: []batchv1.CronJob{{ObjectMeta: metav1.ObjectMeta{Namespace: "batch", Name: "report"},
				Spec: batchv1.CronJobSpec{JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Args: []string{"curl", "http://cart.shop:80/report"}}}}}}}}}},
		}
	}
	namespaceWide := base()
	namespaceWide.PeerAuthentications = []meshv1alpha1.PeerAuthentication{strictPA("shop", "strict", nil)}
	meshWide := base()
	meshWide.Mesh = &meshv1alpha1.Mesh{Spec: meshv1alpha1.MeshSpec{MTLS: meshv1alpha1.MeshMTLS{Mode: meshv1alpha1.MTLSStrict}}}
	exempted := base()
	older := metav1.NewTime(time.Unix(0, 0))
	exempt := strictPA("shop", "cart-permissive", app("cart"))
	exempt.Spec.MTLS.Mode = meshv1alpha1.PeerMTLSPermissive
	exempt.CreationTimestamp = older
	exempted.PeerAuthentications = []meshv1alpha1.PeerAuthentication{strictPA("shop", "strict", nil), exempt}
	sameNS := base()
	sameNS.CronJobs = nil
	sameNS.Pods = append(sameNS.Pods, pod("shop", "legacy", false, app("legacy")))
	sameNS.Namespaces = []corev1.Namespace{ns("shop", false)}
	sameNS.PeerAuthentications = []meshv1alpha1.PeerAuthentication{strictPA("shop", "cart-strict", app("cart"))}
	return []analyzerCase{
		{name: "namespace-wide STRICT blocks a CronJob that names the Service", in: namespaceWide, want: []want{
			{CodeStrictBlocksCallers, "Error", "Pod shop/cart-0", []string{"PeerAuthentication shop/strict", "CronJob batch/report", "names cart.shop",
				"name: cart-0-permissive", "app: \"cart\"", "mode: PERMISSIVE", "kubectl label namespace batch capstan.dev/inject=enabled"}},
		}},
		{name: "the Mesh default STRICT", in: meshWide, want: []want{
			{CodeStrictBlocksCallers, "Error", "Pod shop/cart-0", []string{"from Mesh default"}},
		}},
		{name: "a workload PERMISSIVE policy exempts the workload", in: exempted},
		{name: "an un-injected pod of the same namespace can call: a warning", in: sameNS, want: []want{
			{CodeStrictBlocksCallers, "Warning", "Pod shop/cart-0", []string{"Pod shop/legacy (in the same namespace"}},
			{CodeUninjectedPods, "Error", "Pod shop/legacy", nil}, // shop is not enabled here: see below
		}[:1]},
		{name: "no STRICT, no finding", in: base()},
	}
}

func bypassCases() []analyzerCase {
	in := func() Inputs {
		return Inputs{
			Namespaces: []corev1.Namespace{ns("shop", true)},
			Pods: []corev1.Pod{pod("shop", "reviews-v1", true, appVersion("reviews", "v1")),
				pod("shop", "reviews-v2", true, appVersion("reviews", "v2")), pod("shop", "web", true, app("web"))},
			Services:            []corev1.Service{svc("shop", "reviews", corev1.ServiceTypeClusterIP, app("reviews"))},
			MeshRoutes:          []meshv1alpha1.MeshRoute{route("shop", "canary", []string{"reviews"}, dest("reviews", "v1", 90), dest("reviews", "v2", 10))},
			DestinationPolicies: []meshv1alpha1.DestinationPolicy{policy("shop", "reviews", "reviews", map[string]string{"v1": "v1", "v2": "v2"})},
		}
	}
	withPaths := in()
	withPaths.Services = append(withPaths.Services, svc("shop", "reviews-public", corev1.ServiceTypeNodePort, appVersion("reviews", "v2")))
	withPaths.Ingresses = []networkingv1.Ingress{{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "www"},
		Spec: networkingv1.IngressSpec{DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "reviews"}}}}}
	withPaths.Namespaces = append(withPaths.Namespaces, ns("tools", false))
	withPaths.Deployments = []appsv1.Deployment{{ObjectMeta: metav1.ObjectMeta{Namespace: "tools", Name: "loadgen"},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c",
			Env: []corev1.EnvVar{{Name: "TARGET", Value: "reviews.shop.svc.cluster.local"}}}}}}}}}
	return []analyzerCase{
		{name: "a weighted route reached only through the mesh", in: in()},
		{name: "a weighted route bypassed by an un-injected Deployment, an Ingress and a NodePort", in: withPaths, want: []want{
			{CodeWeightedBypass, "Warning", "MeshRoute shop/canary", []string{"reviews:v1=90, reviews:v2=10", "Deployment tools/loadgen",
				"names reviews.shop.svc.cluster.local", "Ingress shop/www", "shop/reviews-public (NodePort)", "ClusterIP"}},
		}},
	}
}

func outlierCases() []analyzerCase {
	od := &meshv1alpha1.OutlierDetection{MaxEjectionPercent: ptr.To[int32](100), MinHealthPercent: ptr.To[int32](0)}
	dp := meshv1alpha1.DestinationPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "reviews"},
		Spec: meshv1alpha1.DestinationPolicySpec{Host: "reviews", TrafficPolicy: &meshv1alpha1.TrafficPolicy{OutlierDetection: od}}}
	allowed := *dp.DeepCopy()
	allowed.Annotations = map[string]string{meshv1alpha1.AnnotationAllowAggressiveEjection: "true"}
	safe := *dp.DeepCopy()
	safe.Spec.TrafficPolicy.OutlierDetection.MinHealthPercent = ptr.To[int32](10)
	services := []corev1.Service{svc("shop", "reviews", corev1.ServiceTypeClusterIP, app("reviews"))}
	return []analyzerCase{
		{name: "outlier detection that can eject the whole pool", in: Inputs{Services: services, DestinationPolicies: []meshv1alpha1.DestinationPolicy{dp}},
			want: []want{{CodeWholePoolEjection, "Error", "DestinationPolicy shop/reviews", []string{"spec.trafficPolicy.outlierDetection.maxEjectionPercent", "minHealthPercent above 0"}}}},
		{name: "admitted with the annotation: a warning", in: Inputs{Services: services, DestinationPolicies: []meshv1alpha1.DestinationPolicy{allowed}},
			want: []want{{CodeWholePoolEjection, "Warning", "DestinationPolicy shop/reviews", []string{"admitted because of the annotation"}}}},
		{name: "a panic threshold keeps the pool", in: Inputs{Services: services, DestinationPolicies: []meshv1alpha1.DestinationPolicy{safe}}},
	}
}

func routeCases() []analyzerCase {
	services := []corev1.Service{svc("shop", "reviews", corev1.ServiceTypeClusterIP, app("reviews"))}
	pods := []corev1.Pod{pod("shop", "reviews-v1", true, appVersion("reviews", "v1"))}
	older := route("shop", "a", []string{"reviews"}, dest("reviews", "", 100))
	older.CreationTimestamp = metav1.NewTime(time.Unix(10, 0))
	newer := route("shop", "b", []string{"reviews.shop.svc.cluster.local"}, dest("reviews", "", 100))
	newer.CreationTimestamp = metav1.NewTime(time.Unix(20, 0))
	return []analyzerCase{
		{name: "unknown host and subset", in: Inputs{Services: services, Pods: pods,
			MeshRoutes: []meshv1alpha1.MeshRoute{route("shop", "r", []string{"reviews", "ratings"}, dest("reviews", "v3", 100))}},
			want: []want{
				{CodeUnknownHost, "Error", "MeshRoute shop/r", []string{"spec.hosts[1]", "ratings.shop.svc.cluster.local"}},
				{CodeUnknownSubset, "Error", "MeshRoute shop/r", []string{"spec.http[0].route[0]", `subset "v3"`}},
			}},
		{name: "a subset that matches no pod", in: Inputs{Services: services, Pods: pods,
			DestinationPolicies: []meshv1alpha1.DestinationPolicy{policy("shop", "reviews", "reviews", map[string]string{"v1": "v1", "v2": "v2"})}},
			want: []want{{CodeEmptySubset, "Warning", "DestinationPolicy shop/reviews", []string{"spec.subsets[1] (v2)", "version=v2"}}}},
		{name: "conflicting routes: the newer loses", in: Inputs{Services: services, Pods: pods, MeshRoutes: []meshv1alpha1.MeshRoute{newer, older}},
			want: []want{{CodeConflictingRoute, "Warning", "MeshRoute shop/b", []string{"older MeshRoute shop/a"}}}},
	}
}

func gatewayCases() []analyzerCase {
	kind := GatewayAPIKind{Kind: "HTTPRoute", CRD: "httproutes.gateway.networking.k8s.io", BundleVersion: "v1.3.0"}
	withObjects := kind
	withObjects.Objects = []string{"shop/web"}
	return []analyzerCase{
		{name: "Gateway API CRDs without objects", in: Inputs{GatewayAPI: []GatewayAPIKind{kind}}},
		{name: "Gateway API objects of an unsupported release", in: Inputs{GatewayAPI: []GatewayAPIKind{withObjects}},
			want: []want{{CodeGatewayAPIVersion, "Warning", "CustomResourceDefinition httproutes.gateway.networking.k8s.io", []string{"release v1.3.0", "shop/web"}}}},
	}
}

func TestOfflineTemplates(t *testing.T) {
	// From files, a Deployment of an enabled namespace would be injected: no
	// CAP001; one of a plain namespace calling a STRICT Service is a caller.
	in := Inputs{
		Namespaces: []corev1.Namespace{ns("shop", true), ns("plain", false)},
		Deployments: []appsv1.Deployment{
			{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart"}, Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: app("cart")}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}}}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: "plain", Name: "client"}, Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Command: []string{"wget", "cart.shop"}}}}}}},
		},
		Services:            []corev1.Service{svc("shop", "cart", corev1.ServiceTypeClusterIP, app("cart"))},
		PeerAuthentications: []meshv1alpha1.PeerAuthentication{strictPA("shop", "strict", nil)},
	}
	got := Run(&in)
	if len(got) != 1 || got[0].Code != CodeStrictBlocksCallers || got[0].Object.String() != "Deployment shop/cart" ||
		!strings.Contains(got[0].Message, "Deployment plain/client") {
		t.Fatalf("got:\n%s", dump(got))
	}
	if !HasErrors(got) {
		t.Error("HasErrors = false for an Error finding")
	}
	if len(InNamespace(got, "plain")) != 0 || len(InNamespace(got, "shop")) != 1 {
		t.Error("InNamespace does not keep the findings of its namespace only")
	}
}
