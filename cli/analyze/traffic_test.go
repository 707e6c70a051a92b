package analyze

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

func sampled(pods map[string]PodTraffic) *Traffic {
	return &Traffic{Window: 10 * time.Second, Pods: pods}
}

func trafficCases() []analyzerCase {
	shop := []corev1.Namespace{ns("shop", true)}
	web := []corev1.Pod{owned(pod("shop", "web-1", true, app("web")), KindReplicaSet, "web-5d8"),
		owned(pod("shop", "web-2", true, app("web")), KindReplicaSet, "web-5d8")}
	webSvc := []corev1.Service{svc("shop", "web", corev1.ServiceTypeClusterIP, app("web"))}
	reviews := []corev1.Pod{pod("shop", "reviews-v1", true, appVersion("reviews", "v1")), pod("shop", "reviews-v2", true, appVersion("reviews", "v2"))}
	return []analyzerCase{
		{name: "plaintext requests to a PERMISSIVE workload, summed over its pods", in: Inputs{
			Namespaces: shop, Pods: web, Services: webSvc,
			Traffic: sampled(map[string]PodTraffic{"shop/web-1": {Mesh: 5, Plaintext: 3}, "shop/web-2": {Mesh: 1, Plaintext: 1}}),
		}, want: []want{{CodePlaintextCallers, "Warning", "ReplicaSet shop/web-5d8", []string{"in the last 10s, 4 of the 10 requests", "STRICT"}}}},
		{name: "mesh traffic only", in: Inputs{
			Namespaces: shop, Pods: web, Services: webSvc,
			Traffic: sampled(map[string]PodTraffic{"shop/web-1": {Mesh: 5}, "shop/web-2": {Mesh: 5}}),
		}},
		{name: "STRICT sidecars refused connections", in: Inputs{
			Namespaces: shop, Pods: web[:1], Services: webSvc, PeerAuthentications: []meshv1alpha1.PeerAuthentication{strictPA("shop", "default", nil)},
			Traffic: sampled(map[string]PodTraffic{"shop/web-1": {Mesh: 5, FailedHandshakes: 4}}),
		}, want: []want{{CodePlaintextRefused, "Error", "ReplicaSet shop/web-5d8", []string{"refused 4 connection(s)", "failing now", "web-5d8-permissive"}}}},
		{name: "a STRICT workload without failed handshakes", in: Inputs{
			Namespaces: shop, Pods: web[:1], Services: webSvc, PeerAuthentications: []meshv1alpha1.PeerAuthentication{strictPA("shop", "default", nil)},
			Traffic: sampled(map[string]PodTraffic{"shop/web-1": {Mesh: 5}}),
		}},
		{name: "share of a weighted route's traffic around the mesh", in: Inputs{
			Namespaces: shop, Pods: reviews, Services: []corev1.Service{svc("shop", "reviews", corev1.ServiceTypeClusterIP, app("reviews"))},
			MeshRoutes:          []meshv1alpha1.MeshRoute{route("shop", "reviews", []string{"reviews"}, dest("reviews", "v1", 90), dest("reviews", "v2", 10))},
			DestinationPolicies: []meshv1alpha1.DestinationPolicy{policy("shop", "reviews", "reviews", map[string]string{"v1": "v1", "v2": "v2"})},
			Traffic:             sampled(map[string]PodTraffic{"shop/reviews-v1": {Mesh: 10, Plaintext: 10}, "shop/reviews-v2": {Mesh: 10}}),
		}, want: []want{
			{CodePlaintextCallers, "Warning", "Pod shop/reviews-v1", nil},
			{CodeMeshBypassShare, "Warning", "MeshRoute shop/reviews", []string{"33% of the requests", "(10 of 30)", "reviews:v1=90", "Pod shop/reviews-v1 10"}},
		}},
	}
}

func TestLivePods(t *testing.T) {
	in := &Inputs{
		Namespaces: []corev1.Namespace{ns("shop", true), ns("other", true)},
		Pods: []corev1.Pod{pod("shop", "web-1", true, app("web")), pod("shop", "legacy", false, app("web")),
			pod("shop", "lonely", true, app("lonely")), pod("other", "web-1", true, app("web"))},
		Services: []corev1.Service{svc("shop", "web", corev1.ServiceTypeClusterIP, app("web")), svc("other", "web", corev1.ServiceTypeClusterIP, app("web"))},
	}
	pods, truncated := LivePods(in, "shop")
	if want := []string{"shop/web-1"}; !slices.Equal(pods, want) || truncated {
		t.Errorf("LivePods(shop) = %v, %v; want %v: meshed pods behind a Service", pods, truncated, want)
	}
	if pods, _ := LivePods(in, ""); len(pods) != 2 {
		t.Errorf("LivePods(all) = %v, want the web-1 pods of both namespaces", pods)
	}
}
