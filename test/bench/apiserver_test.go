package bench

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/capstanmesh/capstan/internal/app"
	"github.com/capstanmesh/capstan/pki/builtin"
	"github.com/capstanmesh/capstan/test/bench/sidecars"
	"github.com/capstanmesh/capstan/test/envtest"
	"github.com/capstanmesh/capstan/xds/translate"
)

// The smaller variant: the same mesh and sidecars, but the mesh is created
// and changed through the real kube-apiserver, and the operator's
// controllers feed the runner (app.AddPipeline, production debounce).
// It asserts that every proxy converges and that each change made through
// the API reaches every affected proxy; the latencies are logged.
func TestAPIServerVariant(t *testing.T) {
	t.Parallel()
	env, err := envtest.StartWith(envtest.Options{ServiceCIDR: "10.96.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	mesh := Mesh{Services: 20, Endpoints: 3, Namespaces: 1, Proxies: 10, Routes: 2}
	in := mesh.Inputs()
	c := env.Client
	createObjects(t, c, in)
	addr := startOperatorPipeline(t, env, in)
	sp, err := startSidecars(sidecarArgs...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sp.stop() })
	reply, err := sp.call(sidecars.Command{Op: sidecars.OpConnect, Addr: addr, Nodes: NodeIDs(in), Deadline: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if w := summarize(reply.Result); w.Done != mesh.Proxies {
		t.Fatalf("%d of %d proxies converged: %v", w.Done, mesh.Proxies, w.Errors)
	}
	verifyAll(t, sp, mesh)
	for _, ch := range apiChanges(t, c, mesh, in) {
		cr, err := runChange(sp, ch.Change, 30*time.Second, ch.apply)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s change through the API server: %d/%d p50 %.3fs p99 %.3fs max %.3fs, %d bytes",
			cr.Name, cr.Done, cr.Proxies, cr.P50, cr.P99, cr.Max, cr.Bytes)
		if cr.Proxies != mesh.Proxies || cr.Done != cr.Proxies {
			t.Errorf("%s change: %d of %d affected proxies ACKed it, want all %d", cr.Name, cr.Done, cr.Proxies, mesh.Proxies)
		}
	}
}

func verifyAll(t *testing.T, sp *sidecarProcess, mesh Mesh) {
	t.Helper()
	v := sidecars.Verification{Services: mesh.ServiceIPs()}
	for _, w := range mesh.RouteWeights() {
		v.Splits = append(v.Splits, splitKey(w))
	}
	reply, err := sp.call(sidecars.Command{Op: sidecars.OpVerify, Verify: v})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range reply.Failures {
		t.Errorf("config check: %s", f)
	}
}

// startOperatorPipeline runs the operator's xDS side (inputs controller,
// runner, status reconcilers, server) with workload certificates issued up
// front; it returns the xDS address.
func startOperatorPipeline(t *testing.T, env *envtest.Env, in *translate.Inputs) string {
	t.Helper()
	ca, err := builtin.New(t.Context(), &builtin.MemoryStore{}, builtin.Options{})
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := issueAll(t.Context(), ca, identities(in))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	env.StartManager(t, func(mgr ctrl.Manager) error {
		_, err := app.AddPipeline(mgr, app.PipelineOptions{Listener: lis, Secrets: secrets})
		return err
	}, "ns-0")
	return lis.Addr().String()
}

// createObjects creates the mesh's objects (ClusterIPs left to the API
// server) and sets the pods' IPs through the status subresource.
func createObjects(t *testing.T, c client.Client, in *translate.Inputs) {
	t.Helper()
	ctx := t.Context()
	create(ctx, t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns-0"}})
	for i := range in.Services {
		s := in.Services[i].DeepCopy()
		s.Spec.ClusterIP, s.Spec.ClusterIPs = "", nil
		create(ctx, t, c, s)
	}
	for i := range in.Pods {
		createPod(ctx, t, c, in.Pods[i].DeepCopy())
	}
	for i := range in.EndpointSlices {
		create(ctx, t, c, in.EndpointSlices[i].DeepCopy())
	}
	for i := range in.DestinationPolicies {
		create(ctx, t, c, in.DestinationPolicies[i].DeepCopy())
	}
	for i := range in.MeshRoutes {
		create(ctx, t, c, in.MeshRoutes[i].DeepCopy())
	}
}

func create(ctx context.Context, t *testing.T, c client.Client, obj client.Object) {
	t.Helper()
	if err := c.Create(ctx, obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

func createPod(ctx context.Context, t *testing.T, c client.Client, pod *corev1.Pod) {
	t.Helper()
	status := pod.Status
	for i := range pod.Spec.Containers {
		pod.Spec.Containers[i].Image = "app"
	}
	create(ctx, t, c, pod)
	pod.Status = status
	pod.Status.PodIPs = []corev1.PodIP{{IP: status.PodIP}}
	if err := c.Status().Update(ctx, pod); err != nil {
		t.Fatalf("setting the IP of pod %s: %v", pod.Name, err)
	}
}

// apiChange is a Change made through the API server.
type apiChange struct {
	Change
	apply func() error
}

// apiChanges are the harness's three changes as API writes: the endpoint
// change's new pod and the new service's pods are created before (not
// measured), the EndpointSlice, MeshRoute and Service writes are measured.
func apiChanges(t *testing.T, c client.Client, mesh Mesh, in *translate.Inputs) []apiChange {
	t.Helper()
	ctx := t.Context()
	ep := mesh.EndpointChange(in)
	weight := mesh.WeightChange(ep.Inputs)
	svc := mesh.NewService(weight.Inputs)
	name, ns := mesh.svc(0)
	newPod := mesh.pod(0, mesh.Endpoints, false)
	newPod.Status.PodIP = ep.Expect.NewIP
	createPod(ctx, t, c, &newPod)
	for j := range mesh.Endpoints {
		p := mesh.pod(mesh.Services, j, false)
		createPod(ctx, t, c, &p)
	}
	return []apiChange{
		{Change: ep, apply: func() error {
			slice := mesh.endpointSlice(0)
			slice.Endpoints = findSlice(ep.Inputs, ns, name+"-x").Endpoints
			return update(ctx, c, &slice)
		}},
		{Change: weight, apply: func() error {
			r := mesh.route(0, changedWeightV1, changedWeightV2)
			return update(ctx, c, &r)
		}},
		{Change: svc, apply: func() error {
			s := mesh.service(mesh.Services)
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "", nil
			if err := c.Create(ctx, &s); err != nil {
				return err
			}
			slice := mesh.endpointSlice(mesh.Services)
			return c.Create(ctx, &slice)
		}},
	}
}

func findSlice(in *translate.Inputs, ns, name string) *discoveryv1.EndpointSlice {
	for i := range in.EndpointSlices {
		if s := &in.EndpointSlices[i]; s.Namespace == ns && s.Name == name {
			return s
		}
	}
	return nil
}

// update writes obj over the stored object of its name.
func update(ctx context.Context, c client.Client, obj client.Object) error {
	cur, ok := obj.DeepCopyObject().(client.Object)
	if !ok {
		return fmt.Errorf("%T is not a client.Object", obj)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(obj), cur); err != nil {
		return fmt.Errorf("reading %s: %w", obj.GetName(), err)
	}
	obj.SetResourceVersion(cur.GetResourceVersion())
	if err := c.Update(ctx, obj); err != nil {
		return fmt.Errorf("updating %s: %w", obj.GetName(), err)
	}
	return nil
}
