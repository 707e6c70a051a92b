package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/xds"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/internal/app"
	"github.com/capstanmesh/capstan/xds/ir"
	"github.com/capstanmesh/capstan/xds/server"
)

const (
	// service is the Service every test sends to, on servicePort.
	service     = "echo"
	servicePort = 9090
	// clientPod is the pod of the proxyless gRPC client, with clientIP.
	clientPod = "client"
	clientIP  = "10.9.0.1"
	wait      = 30 * time.Second
)

// localIP is an address of this machine that an EndpointSlice may hold: the
// API server refuses loopback addresses there. The backends all listen on it,
// on distinct ports, like host-network pods of one node.
var localIP = sync.OnceValues(func() (string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
			return n.IP.String(), nil
		}
	}
	return "", errors.New("no non-loopback IPv4 address")
})

func backendIP(t *testing.T) string {
	t.Helper()
	ip, err := localIP()
	if err != nil {
		t.Skipf("the backends need an address an EndpointSlice accepts: %v", err)
	}
	return ip
}

// mesh is the operator's pipeline in one namespace, with the echo Service and
// the proxyless client pod.
type mesh struct {
	ns      string
	xdsAddr string
	server  *server.Server
}

// startMesh runs the inputs controller, runner, status reconcilers and xDS
// server (plaintext, no stream authentication) in a manager watching a fresh
// namespace, and creates the echo Service and the client pod annotated
// capstan.dev/generator: grpc.
func startMesh(t *testing.T) *mesh {
	t.Helper()
	return startMeshWith(t, nil)
}

// startMeshWith is startMesh with setup, when not nil, run first in the
// manager (with the mesh's namespace) to change the xDS options (TLS,
// authentication) the way the operator's main does.
func startMeshWith(t *testing.T, setup func(mgr ctrl.Manager, ns string, opts *app.PipelineOptions) error) *mesh {
	t.Helper()
	ns := env.NewNamespace(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &mesh{ns: ns, xdsAddr: lis.Addr().String()}
	env.StartManager(t, func(mgr ctrl.Manager) error {
		opts := app.PipelineOptions{Listener: lis, Debounce: 20 * time.Millisecond, MaxDelay: 200 * time.Millisecond}
		if setup != nil {
			if err := setup(mgr, ns, &opts); err != nil {
				return err
			}
		}
		srv, err := app.AddPipeline(mgr, opts)
		m.server = srv
		return err
	}, ns)
	m.create(t, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: service},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": service},
			Ports: []corev1.ServicePort{{Name: "grpc", Port: servicePort, TargetPort: intstr.FromInt32(servicePort)}}},
	})
	m.create(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: clientPod}})
	m.pod(t, clientPod, map[string]string{"app": clientPod}, map[string]string{meshv1alpha1.AnnotationGenerator: meshv1alpha1.GeneratorGRPC}, clientIP)
	return m
}

func (m *mesh) create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		o.SetNamespace(m.ns)
		if err := env.Client.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

// pod creates a pod and, when ip is set, gives it that IP as the kubelet would.
func (m *mesh) pod(t *testing.T, name string, labels, annotations map[string]string, ip string) {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: annotations},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example/app:1"}}},
	}
	if name == clientPod {
		pod.Spec.ServiceAccountName = clientPod
	}
	m.create(t, pod)
	if ip == "" {
		return
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}
	if err := env.Client.Status().Update(context.Background(), pod); err != nil {
		t.Fatalf("setting the IP of pod %s: %v", name, err)
	}
}

// addBackend starts a gRPC server for version and makes it a ready endpoint
// of the echo Service: a pod labelled app=echo, version=<version> and an
// EndpointSlice pointing at the server's loopback address and port.
func (m *mesh) addBackend(t *testing.T, name, version string) *backend {
	t.Helper()
	b := startBackend(t, backendIP(t), version)
	m.pod(t, name, map[string]string{"app": service, "version": version}, nil, "")
	m.create(t, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("grpc"), Port: ptr.To(b.port)}},
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{b.ip},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: m.ns, Name: name},
		}},
	})
	return b
}

// subsets creates the echo DestinationPolicy with subsets v1 and v2 and the traffic policy tp.
func (m *mesh) policy(t *testing.T, tp *meshv1alpha1.TrafficPolicy, subsets ...string) {
	t.Helper()
	dp := &meshv1alpha1.DestinationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: service},
		Spec:       meshv1alpha1.DestinationPolicySpec{Host: service, TrafficPolicy: tp},
	}
	for _, s := range subsets {
		dp.Spec.Subsets = append(dp.Spec.Subsets, meshv1alpha1.Subset{Name: s, Labels: map[string]string{"version": s}})
	}
	m.create(t, dp)
}

// nodeID is the xDS node ID of the client pod.
func (m *mesh) nodeID() string { return ir.GRPCNodeID(clientIP, clientPod, m.ns) }

// bootstrap is the client's xDS bootstrap: Capstan's server in plaintext, the
// client pod's node ID and generator, and a locality (grpc-js requires one).
func (m *mesh) bootstrap() string {
	return fmt.Sprintf(`{
  "xds_servers": [{"server_uri": %q, "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
  "node": {"id": %q, "metadata": {%q: %q}, "locality": {"zone": "e2e"}}
}`, m.xdsAddr, m.nodeID(), meshv1alpha1.AnnotationGenerator, meshv1alpha1.GeneratorGRPC)
}

// target is what the client dials: the service by <name>.<namespace>:<port>.
func (m *mesh) target() string {
	return "xds:///" + service + "." + m.ns + ":" + strconv.Itoa(servicePort)
}

// dial connects a grpc-go client through its xDS resolver, configured with
// this mesh's bootstrap (grpc-go reads the environment's only at start-up).
func (m *mesh) dial(t *testing.T) testgrpc.TestServiceClient {
	t.Helper()
	resolver, err := xds.NewXDSResolverWithConfigForTesting([]byte(m.bootstrap()))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(m.target(), grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(resolver))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return testgrpc.NewTestServiceClient(conn)
}

// waitProgrammed waits until the object's Programmed condition is True for
// its current generation: the runner has then published config with it.
func waitProgrammed(t *testing.T, obj client.Object, conditions func() []metav1.Condition) {
	t.Helper()
	key := client.ObjectKeyFromObject(obj)
	check := func() error {
		if err := env.Client.Get(context.Background(), key, obj); err != nil {
			return err
		}
		c := meta.FindStatusCondition(conditions(), meshv1alpha1.ConditionProgrammed)
		if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != obj.GetGeneration() {
			return fmt.Errorf("%s %s: Programmed = %+v at generation %d", obj.GetObjectKind().GroupVersionKind().Kind, key, c, obj.GetGeneration())
		}
		return nil
	}
	envtestEventually(t, check)
}

func routeProgrammed(t *testing.T, mr *meshv1alpha1.MeshRoute) {
	t.Helper()
	waitProgrammed(t, mr, func() []metav1.Condition { return mr.Status.Conditions })
}

func policyProgrammed(t *testing.T, m *mesh) *meshv1alpha1.DestinationPolicy {
	t.Helper()
	dp := &meshv1alpha1.DestinationPolicy{ObjectMeta: metav1.ObjectMeta{Name: service, Namespace: m.ns}}
	waitProgrammed(t, dp, func() []metav1.Condition { return dp.Status.Conditions })
	return dp
}

func envtestEventually(t *testing.T, check func() error) {
	t.Helper()
	if err := pollUntil(wait, check); err != nil {
		t.Fatal(err)
	}
}

// pollUntil calls check until it returns nil, or returns its last error after timeout.
func pollUntil(timeout time.Duration, check func() error) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var err error
	for {
		if err = check(); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("still failing after %s: %w", timeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// updateRoute changes a MeshRoute, retrying on conflicts.
func (m *mesh) updateRoute(t *testing.T, name string, change func(*meshv1alpha1.MeshRoute)) *meshv1alpha1.MeshRoute {
	t.Helper()
	mr := &meshv1alpha1.MeshRoute{}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: m.ns, Name: name}, mr); err != nil {
			return err
		}
		change(mr)
		return env.Client.Update(context.Background(), mr)
	})
	if err != nil {
		t.Fatal(err)
	}
	return mr
}

// tally makes n calls and counts the answers by backend version; failed
// calls are counted under their status code.
func tally(c testgrpc.TestServiceClient, n int, md ...string) map[string]int {
	out := map[string]int{}
	for range n {
		v, err := call(c, 10*time.Second, md...)
		if err != nil {
			v = statusCode(err)
		}
		out[v]++
	}
	return out
}

// call makes one UnaryCall with the metadata md (key, value pairs) and
// returns the version that answered.
func call(c testgrpc.TestServiceClient, timeout time.Duration, md ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if len(md) > 0 {
		ctx = metadata.AppendToOutgoingContext(ctx, md...)
	}
	resp, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{})
	if err != nil {
		return "", err
	}
	return resp.GetHostname(), nil
}
