package dataplane

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/test/envtest"
	"github.com/capstanmesh/capstan/webhook/inject"
)

// envoyArgsEnv adds arguments to every Envoy, for debugging
// (e.g. "--component-log-level grpc:trace,config:debug").
const envoyArgsEnv = "CAPSTAN_DATAPLANE_ENVOY_ARGS"

// envoyEnvEnv adds environment variables (NAME=VALUE, space-separated)
// to every Envoy, for debugging (e.g. "GRPC_TRACE=http GRPC_VERBOSITY=debug").
const envoyEnvEnv = "CAPSTAN_DATAPLANE_ENVOY_ENV"

// wait bounds every poll of the scenarios.
const wait = 60 * time.Second

// podSpec describes a pod of a scenario.
type podSpec struct {
	name, namespace string
	// serviceAccount defaults to the pod's name.
	serviceAccount string
	labels         map[string]string
	annotations    map[string]string
	// noInject labels the pod capstan.dev/inject=false (like a Job that
	// opted out): no sidecar, its traffic is not captured.
	noInject bool
	// app, when set, runs in the pod (Name defaults to the pod's name).
	app *AppConfig
	// ports are the app container's ports.
	ports []corev1.ContainerPort
	// readiness is the app container's readiness probe.
	readiness *corev1.Probe
	// tokenOf, when set, gives the sidecar that pod's token instead of its
	// own (a stolen token).
	tokenOf *pod
	// noWait returns without waiting for the sidecar to be ready.
	noWait bool
	// bootstrap, when set, changes the sidecar's injected bootstrap (the
	// JSON of its --config-yaml argument) before Envoy starts.
	bootstrap func(map[string]any)
}

// pod is a running pod: the API object as the webhook injected it (with
// its IP in the status), its namespace, app and sidecar.
type pod struct {
	obj   *corev1.Pod
	netns *Netns
	app   *Proc
	envoy *Proc
	// dir holds what the kubelet would mount (token, root CA).
	dir string
}

// startPod creates the pod in the API server (through the injection
// webhook), gives it a namespace and its IP, runs capstan-init and Envoy
// from its injected spec, and starts its app.
func startPod(t *testing.T, spec podSpec) *pod {
	t.Helper()
	ctx := context.Background()
	if spec.serviceAccount == "" {
		spec.serviceAccount = spec.name
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: spec.serviceAccount, Namespace: spec.namespace}}
	if err := env.Client.Create(ctx, sa); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating ServiceAccount %s: %v", spec.serviceAccount, err)
	}
	p := &pod{netns: newNetns(t, spec.name)}
	p.obj = createPodObject(t, spec)
	if got := inject.IsInjected(p.obj); got == spec.noInject {
		t.Fatalf("pod %s: injected %v, want %v", spec.name, got, !spec.noInject)
	}
	setPodIP(t, p.obj, p.netns.IP.String())
	if spec.app != nil {
		cfg := *spec.app
		if cfg.Name == "" {
			cfg.Name = spec.name
		}
		p.app = startApp(t, p.netns, cfg)
	}
	if spec.noInject {
		return p
	}
	p.startSidecar(t, spec.tokenOf, spec.bootstrap)
	if !spec.noWait {
		p.waitReady(t)
	}
	return p
}

func createPodObject(t *testing.T, spec podSpec) *corev1.Pod {
	t.Helper()
	labels := map[string]string{"app": spec.name}
	for k, v := range spec.labels {
		labels[k] = v
	}
	if spec.noInject {
		labels[meshv1alpha1.LabelInject] = "false"
	}
	obj := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: spec.name, Namespace: spec.namespace, Labels: labels, Annotations: spec.annotations},
		Spec: corev1.PodSpec{
			// envtest's API server runs without the ServiceAccount admission
			// plugin, which fills this in before the webhooks in a cluster.
			ServiceAccountName: spec.serviceAccount,
			Containers: []corev1.Container{{
				Name: "app", Image: "example.com/dataplane-app:1", Ports: spec.ports, ReadinessProbe: spec.readiness,
			}},
		},
	}
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating pod %s: %v", spec.name, err)
	}
	return obj
}

// setPodIP writes the pod's status as the kubelet would once its network
// is up.
func setPodIP(t *testing.T, obj *corev1.Pod, ip string) {
	t.Helper()
	obj.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
		HostIP: network.Gateway.String(), HostIPs: []corev1.HostIP{{IP: network.Gateway.String()}},
	}
	if err := env.Client.Status().Update(context.Background(), obj); err != nil {
		t.Fatalf("setting the IP of pod %s: %v", obj.Name, err)
	}
}

// startSidecar does the kubelet's part for the injected containers: it
// writes the volumes (a TokenRequest token, the root CA ConfigMap), runs
// capstan-init in the namespace, and starts Envoy as its user.
func (p *pod) startSidecar(t *testing.T, tokenOf *pod, bootstrap func(map[string]any)) {
	t.Helper()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", Prefix+"-pod-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	// The proxy's user must reach its files: no /root, a readable path.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p.dir = dir
	owner := p
	if tokenOf != nil {
		owner = tokenOf
	}
	vols := Volumes{
		Token: func(ctx context.Context, aud string, exp int64) (string, error) {
			return podToken(ctx, owner.obj, aud, exp)
		},
		ConfigMap: func(ctx context.Context, name string) (map[string]string, error) {
			return waitConfigMap(ctx, p.obj.Namespace, name)
		},
	}
	if err := RunInit(ctx, p.obj, p.netns, tools.capstanInit, filepath.Join(dir, "init"), vols); err != nil {
		t.Fatal(err)
	}
	extra := append([]string{"--use-dynamic-base-id"}, strings.Fields(os.Getenv(envoyArgsEnv))...)
	_, argv, err := EnvoyCommand(ctx, p.obj, p.netns, tools.envoy, filepath.Join(dir, "proxy"), vols, extra...)
	if err != nil {
		t.Fatal(err)
	}
	if bootstrap != nil {
		changeBootstrap(t, argv, bootstrap)
	}
	c, _ := PrepareContainer(ctx, p.obj, meshv1alpha1.ProxyContainerName, filepath.Join(dir, "proxy"), vols)
	cmd := p.netns.Command(context.Background(), argv[0], argv[1:]...)
	// gRPC core's default c-ares resolver finds the xDS Service's name in
	// the pod's hosts file for the channel, but not for the token
	// exchange's HTTP client, which asks DNS (none here): the native
	// resolver (getaddrinfo) reads the hosts file for both.
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GRPC_DNS_RESOLVER=native"}, c.Env...)
	cmd.Env = append(cmd.Env, strings.Fields(os.Getenv(envoyEnvEnv))...)
	p.envoy, err = StartProc("envoy "+p.obj.Name, cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.envoy.Stop(5 * time.Second); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("envoy of %s:\n%s", p.obj.Name, p.envoy.Output())
		}
	})
}

// podToken is a token of the pod's ServiceAccount bound to the pod, as the
// kubelet requests for a projected serviceAccountToken volume.
func podToken(ctx context.Context, obj *corev1.Pod, audience string, exp int64) (string, error) {
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		return "", err
	}
	tr := &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{
		Audiences:         []string{audience},
		ExpirationSeconds: ptr.To(exp),
		BoundObjectRef:    &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: obj.Name, UID: obj.UID},
	}}
	out, err := cs.CoreV1().ServiceAccounts(obj.Namespace).CreateToken(ctx, obj.Spec.ServiceAccountName, tr, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("TokenRequest for %s/%s: %w", obj.Namespace, obj.Spec.ServiceAccountName, err)
	}
	return out.Status.Token, nil
}

// waitConfigMap waits for a ConfigMap (the root CA the operator publishes),
// as the kubelet waits to start a pod whose volume needs it.
func waitConfigMap(ctx context.Context, ns, name string) (map[string]string, error) {
	cm := &corev1.ConfigMap{}
	err := envtest.Poll(ctx, wait, func() error {
		return env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, cm)
	})
	return cm.Data, err
}

// healthURL is the sidecar's health port as the kubelet reaches it.
func (p *pod) healthURL(path string) string {
	return "http://" + p.netns.IP.String() + ":" + strconv.Itoa(meshv1alpha1.PortHealth) + path
}

// hostGet is a GET from the host (the kubelet's place) with a short timeout.
func hostGet(url string) (int, string, error) {
	c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// waitReady polls the sidecar's readiness as the startup probe does.
func (p *pod) waitReady(t *testing.T) {
	t.Helper()
	envtest.Eventually(t, wait, func() error {
		if exited, err := p.envoy.Exited(); exited {
			return fmt.Errorf("envoy of %s exited: %w\n%s", p.obj.Name, err, p.envoy.Output())
		}
		code, body, err := hostGet(p.healthURL("/healthz/ready"))
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("%s: /healthz/ready answered %d %s", p.obj.Name, code, body)
		}
		return nil
	})
}

// stats returns the sidecar's Prometheus stats (port 15090).
func (p *pod) stats(t *testing.T) string {
	t.Helper()
	code, body, err := hostGet("http://" + p.netns.IP.String() + ":" + strconv.Itoa(meshv1alpha1.PortStats) + "/stats/prometheus")
	if err != nil || code != http.StatusOK {
		t.Fatalf("stats of %s: %d %v", p.obj.Name, code, err)
	}
	return body
}

// admin GETs path from the sidecar's admin port (127.0.0.1:15000 inside
// the pod) through a client in the pod.
func (p *pod) admin(t *testing.T, path string) CallResult {
	t.Helper()
	res := calls(t, p.netns, AppConfig{Mode: HTTPClient, URL: "http://127.0.0.1:" + strconv.Itoa(meshv1alpha1.PortEnvoyAdmin) + path, Count: 1})
	if len(res) != 1 {
		t.Fatalf("admin %s of %s: %+v", path, p.obj.Name, res)
	}
	return res[0]
}

// nodeID is the sidecar's xDS node ID.
func (p *pod) nodeID() string {
	return "sidecar~" + p.obj.Status.PodIP + "~" + p.obj.Name + "." + p.obj.Namespace + "~" + p.obj.Namespace + ".svc.cluster.local"
}

// createService creates a Service selecting app=<selector> with one port,
// resolves its names to its ClusterIP in every pod, and returns it.
func createService(t *testing.T, ns, name, selector string, port corev1.ServicePort) *corev1.Service {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": selector}, Ports: []corev1.ServicePort{port}},
	}
	if err := env.Client.Create(context.Background(), svc); err != nil {
		t.Fatalf("creating Service %s: %v", name, err)
	}
	host := name + "." + ns
	if err := network.SetHost(svc.Spec.ClusterIP, host, host+".svc", host+".svc.cluster.local"); err != nil {
		t.Fatal(err)
	}
	return svc
}

// httpPort is a Service port named http, to targetPort.
func httpPort(port, target int32) corev1.ServicePort {
	return corev1.ServicePort{Name: "http", Port: port, TargetPort: intstr.FromInt32(target)}
}

// setEndpoints writes the Service's EndpointSlice with the pods' IPs, all
// ready, as the EndpointSlice controller would.
func setEndpoints(t *testing.T, svc *corev1.Service, pods ...*pod) {
	t.Helper()
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: svc.Name, Namespace: svc.Namespace,
			Labels: map[string]string{discoveryv1.LabelServiceName: svc.Name}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for _, sp := range svc.Spec.Ports {
		slice.Ports = append(slice.Ports, discoveryv1.EndpointPort{Name: ptr.To(sp.Name), Port: ptr.To(sp.TargetPort.IntVal), Protocol: ptr.To(corev1.ProtocolTCP)})
	}
	for _, p := range pods {
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{p.obj.Status.PodIP},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: p.obj.Namespace, Name: p.obj.Name, UID: p.obj.UID},
		})
	}
	if err := env.Client.Create(context.Background(), slice); err != nil {
		t.Fatalf("creating the EndpointSlice of %s: %v", svc.Name, err)
	}
}

// meshNamespace creates a namespace with injection enabled for t.
func meshNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "dp-",
		Labels:       map[string]string{meshv1alpha1.LabelInject: meshv1alpha1.InjectEnabled},
	}}
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

// peerAuth creates a PeerAuthentication in ns: namespace-wide when
// selector is nil.
func peerAuth(t *testing.T, ns, name string, mode meshv1alpha1.PeerMTLSMode, selector map[string]string) *meshv1alpha1.PeerAuthentication {
	t.Helper()
	pa := &meshv1alpha1.PeerAuthentication{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       meshv1alpha1.PeerAuthenticationSpec{MTLS: meshv1alpha1.PeerMTLS{Mode: mode}},
	}
	if selector != nil {
		pa.Spec.Selector = &meshv1alpha1.WorkloadSelector{MatchLabels: selector}
	}
	if err := env.Client.Create(context.Background(), pa); err != nil {
		t.Fatalf("creating PeerAuthentication %s: %v", name, err)
	}
	return pa
}

// update changes obj with change and writes it, retrying on conflicts.
func update(t *testing.T, obj client.Object, change func()) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		change()
		return env.Client.Update(context.Background(), obj)
	})
	if err != nil {
		t.Fatalf("updating %s: %v", obj.GetName(), err)
	}
}
