package integration

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/internal/app"
	"github.com/capstanmesh/capstan/test/envtest"
	"github.com/capstanmesh/capstan/test/xdsclient"
	"github.com/capstanmesh/capstan/xds/ir"
	"github.com/capstanmesh/capstan/xds/server"
)

const xdsWait = 30 * time.Second

// pipeline is the operator's xDS side running against the real API server.
type pipeline struct {
	ns     string
	addr   string
	server *server.Server
}

// startPipeline runs the inputs controller, runner, status reconcilers and xDS
// server in a manager watching a fresh namespace.
func startPipeline(t *testing.T) *pipeline {
	t.Helper()
	return startPipelineWith(t, func(*app.PipelineOptions) {})
}

// startPipelineWith is startPipeline with options changed by set.
func startPipelineWith(t *testing.T, set func(*app.PipelineOptions)) *pipeline {
	t.Helper()
	ns := env.NewNamespace(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pipeline{ns: ns, addr: lis.Addr().String()}
	env.StartManager(t, func(mgr ctrl.Manager) error {
		opts := app.PipelineOptions{Listener: lis, Debounce: 20 * time.Millisecond, MaxDelay: 200 * time.Millisecond}
		set(&opts)
		srv, err := app.AddPipeline(mgr, opts)
		p.server = srv
		return err
	}, ns)
	return p
}

func (p *pipeline) create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		o.SetNamespace(p.ns)
		if err := env.Client.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

// pod creates a pod and sets its IP, as the kubelet would; injected pods carry the injector's status annotation.
func (p *pipeline) pod(t *testing.T, name, ip string, labels map[string]string, injected bool) {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example/app:1",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
	}
	if injected {
		pod.Annotations = map[string]string{meshv1alpha1.AnnotationStatus: `{"version":"test"}`}
	}
	p.create(t, pod)
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}
	if err := env.Client.Status().Update(context.Background(), pod); err != nil {
		t.Fatalf("setting the IP of pod %s: %v", name, err)
	}
}

// seedReviews creates the reviews Service with v1 and v2 pods and their
// EndpointSlice, a DestinationPolicy with both subsets, and an injected client pod.
func (p *pipeline) seedReviews(t *testing.T) string {
	t.Helper()
	p.create(t, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "reviews"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "reviews"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 9080, TargetPort: intstr.FromInt32(8080)}}},
	})
	p.pod(t, "reviews-v1", "10.1.0.1", map[string]string{"app": "reviews", "version": "v1"}, true)
	p.pod(t, "reviews-v2", "10.1.0.2", map[string]string{"app": "reviews", "version": "v2"}, true)
	p.pod(t, "productpage", "10.1.0.9", map[string]string{"app": "productpage"}, true)
	p.create(t, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "reviews-abc", Labels: map[string]string{discoveryv1.LabelServiceName: "reviews"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.1.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
				TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: p.ns, Name: "reviews-v1"}},
			{Addresses: []string{"10.1.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
				TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: p.ns, Name: "reviews-v2"}},
		},
	})
	p.create(t, &meshv1alpha1.DestinationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "reviews"},
		Spec: meshv1alpha1.DestinationPolicySpec{Host: "reviews", Subsets: []meshv1alpha1.Subset{
			{Name: "v1", Labels: map[string]string{"version": "v1"}},
			{Name: "v2", Labels: map[string]string{"version": "v2"}},
		}},
	})
	return ir.SidecarNodeID("10.1.0.9", "productpage", p.ns)
}

func (p *pipeline) cluster(subset string) string {
	return ir.ClusterName("reviews."+p.ns+".svc.cluster.local", 9080, subset)
}

// weightsOf returns cluster → weight of the reviews virtual host's first route, from route config "9080".
func weightsOf(s xdsclient.State, fqdn string) (map[string]uint32, error) {
	a, ok := s[resourcev3.RouteType]["9080"]
	if !ok {
		return nil, fmt.Errorf("no route configuration 9080 yet")
	}
	rc := &routev3.RouteConfiguration{}
	if err := a.UnmarshalTo(rc); err != nil {
		return nil, err
	}
	for _, vh := range rc.GetVirtualHosts() {
		if !slices.Contains(vh.GetDomains(), fqdn) {
			continue
		}
		out := map[string]uint32{}
		action := vh.GetRoutes()[0].GetRoute()
		if c := action.GetCluster(); c != "" {
			out[c] = 100
		}
		for _, wc := range action.GetWeightedClusters().GetClusters() {
			out[wc.GetName()] = wc.GetWeight().GetValue()
		}
		return out, nil
	}
	return nil, fmt.Errorf("no virtual host for %s", fqdn)
}

func wantWeights(fqdn string, want map[string]uint32) func(xdsclient.State) error {
	return func(s xdsclient.State) error {
		got, err := weightsOf(s, fqdn)
		if err != nil {
			return err
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("weights %v, want %v", got, want)
		}
		return nil
	}
}

func hasResources(typeURL string, names ...string) func(xdsclient.State) error {
	return func(s xdsclient.State) error {
		for _, n := range names {
			if _, ok := s[typeURL][n]; !ok {
				return fmt.Errorf("%s %q not received (have %d)", typeURL, n, len(s[typeURL]))
			}
		}
		return nil
	}
}

func TestPipelineServesDeltaClient(t *testing.T) {
	p := startPipeline(t)
	node := p.seedReviews(t)
	fqdn := "reviews." + p.ns + ".svc.cluster.local"
	v1, v2, all := p.cluster("v1"), p.cluster("v2"), p.cluster("")

	c := xdsclient.DialDelta(t, p.addr, node)
	c.Subscribe(t, resourcev3.ClusterType)
	c.Subscribe(t, resourcev3.ListenerType)
	c.Subscribe(t, resourcev3.RouteType, "9080")
	c.Subscribe(t, resourcev3.EndpointType, v1, v2, all)
	c.WaitFor(t, xdsWait, hasResources(resourcev3.ClusterType, v1, v2, all))
	c.WaitFor(t, xdsWait, hasResources(resourcev3.ListenerType, "virtualOutbound", "virtualInbound", "0.0.0.0_9080"))
	c.WaitFor(t, xdsWait, hasResources(resourcev3.EndpointType, v1, v2, all))
	c.WaitFor(t, xdsWait, wantWeights(fqdn, map[string]uint32{all: 100}))

	route := canaryRoute(p.ns, "reviews")
	p.create(t, route)
	c.WaitFor(t, xdsWait, wantWeights(fqdn, map[string]uint32{v1: 90, v2: 10}))
	waitProgrammed(t, p.ns, "reviews")

	// Shift the weights: only the route configuration changes, so only it is sent again.
	before := len(c.Responses())
	updateRoute(t, p.ns, "reviews", func(mr *meshv1alpha1.MeshRoute) {
		mr.Spec.HTTP[0].Route[0].Weight, mr.Spec.HTTP[0].Route[1].Weight = ptr.To[int32](50), ptr.To[int32](50)
	})
	c.WaitFor(t, xdsWait, wantWeights(fqdn, map[string]uint32{v1: 50, v2: 50}))
	for _, r := range c.Responses()[before:] {
		if r.TypeURL != resourcev3.RouteType || !slices.Equal(r.Names, []string{"9080"}) || len(r.Removed) > 0 {
			t.Errorf("after a weight change the client got %+v; want only route configuration 9080", r)
		}
	}

	// Delete the route: the host falls back to its default route.
	if err := env.Client.Delete(context.Background(), route); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(t, xdsWait, wantWeights(fqdn, map[string]uint32{all: 100}))
}

func TestPipelineServesSotWClient(t *testing.T) {
	p := startPipeline(t)
	node := p.seedReviews(t)
	p.create(t, canaryRoute(p.ns, "reviews"))
	v1, v2, all := p.cluster("v1"), p.cluster("v2"), p.cluster("")

	c := xdsclient.DialSotW(t, p.addr, node)
	c.Watch(t, resourcev3.ClusterType)
	c.Watch(t, resourcev3.ListenerType)
	c.Watch(t, resourcev3.RouteType, "9080")
	// Like Envoy, ask for the endpoints of every EDS cluster: an ADS server
	// answers a state-of-the-world request only when it names them all.
	c.Watch(t, resourcev3.EndpointType, v1, v2, all)
	c.WaitFor(t, xdsWait, hasResources(resourcev3.ClusterType, v1, v2))
	c.WaitFor(t, xdsWait, hasResources(resourcev3.ListenerType, "virtualOutbound", "virtualInbound"))
	c.WaitFor(t, xdsWait, hasResources(resourcev3.EndpointType, v1, v2))
	c.WaitFor(t, xdsWait, wantWeights("reviews."+p.ns+".svc.cluster.local", map[string]uint32{v1: 90, v2: 10}))

	// The route's status counts the proxy once it has ACKed everything.
	envtest.Eventually(t, xdsWait, func() error {
		mr, err := getRoute(p.ns, "reviews")
		if err != nil {
			return err
		}
		if mr.Status.Proxies == nil || mr.Status.Proxies.Programmed < 1 {
			return fmt.Errorf("status.proxies %+v, want at least 1 programmed", mr.Status.Proxies)
		}
		return wantCondition(mr.Status.Conditions, meshv1alpha1.ConditionProgrammed, metav1.ConditionTrue, mr.Generation)
	})
}

// A node ID naming no known pod gets nothing, but its stream stays open and
// receives config once the pod appears.
func TestPipelineWaitsForUnknownPod(t *testing.T) {
	p := startPipeline(t)
	p.seedReviews(t)
	late := ir.SidecarNodeID("10.1.0.20", "ratings", p.ns)
	c := xdsclient.DialDelta(t, p.addr, late)
	c.Subscribe(t, resourcev3.ClusterType)
	p.pod(t, "ratings", "10.1.0.20", map[string]string{"app": "ratings"}, true)
	c.WaitFor(t, xdsWait, hasResources(resourcev3.ClusterType, p.cluster("v1")))
}

// A route to an unknown subset keeps the rest programmed and names the reference.
func TestPipelineReportsUnresolvedSubset(t *testing.T) {
	p := startPipeline(t)
	p.seedReviews(t)
	route := canaryRoute(p.ns, "reviews")
	route.Spec.HTTP[0].Route[1].Subset = "v3"
	p.create(t, route)
	envtest.Eventually(t, xdsWait, func() error {
		mr, err := getRoute(p.ns, "reviews")
		if err != nil {
			return err
		}
		c, err := condition(mr.Status.Conditions, meshv1alpha1.ConditionResolvedRefs)
		if err != nil {
			return err
		}
		if c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, `"v3"`) {
			return fmt.Errorf("ResolvedRefs %s %q, want False naming subset v3", c.Status, c.Message)
		}
		return nil
	})
}

func waitProgrammed(t *testing.T, ns, name string) {
	t.Helper()
	envtest.Eventually(t, xdsWait, func() error {
		mr, err := getRoute(ns, name)
		if err != nil {
			return err
		}
		return wantCondition(mr.Status.Conditions, meshv1alpha1.ConditionProgrammed, metav1.ConditionTrue, mr.Generation)
	})
}

// updateRoute changes a MeshRoute, retrying when the status writer got there first.
func updateRoute(t *testing.T, ns, name string, change func(*meshv1alpha1.MeshRoute)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		mr, err := getRoute(ns, name)
		if err != nil {
			return err
		}
		change(mr)
		return env.Client.Update(context.Background(), mr)
	})
	if err != nil {
		t.Fatalf("updating MeshRoute %s: %v", name, err)
	}
}
