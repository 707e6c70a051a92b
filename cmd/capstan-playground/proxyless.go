package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/internal/netpod"
	"github.com/capstanmesh/capstan/test/envtest"
	"github.com/capstanmesh/capstan/xds/ir"
)

// The fallback where network namespaces are not allowed (not root, not
// Linux): no pods and no Envoy. reviews v1 and v2 are gRPC servers on this
// machine's own address (an EndpointSlice may not hold a loopback one),
// frontend a proxyless gRPC client (xds:///reviews.demo:9080) that gets
// its routes and endpoints from the operator, whose xDS is plaintext on
// loopback: without pods there is no pod token to authenticate with. The
// view counts frontend's calls by the server that answered.

// proxyless is a running fallback playground.
type proxyless struct {
	opts    options
	env     *envtest.Env
	manager *netpod.Proc
	mgrLog  *os.File
	procs   []*netpod.Proc
	logs    []*os.File
	xdsAddr string

	mu     sync.Mutex
	byPod  map[string]float64
	failed float64
}

// startProxyless starts the API server, the operator and the demo.
func startProxyless(ctx context.Context, opts options, say func(string, ...any)) (*proxyless, error) {
	px := &proxyless{opts: opts, byPod: map[string]float64{}}
	steps := []step{
		{"starting etcd and kube-apiserver (bin/k8s) with Capstan's CRDs and webhooks", px.startAPIServer},
		{"starting the operator (bin/manager; xDS in plaintext on loopback: proxyless clients have no pod token here)", px.startOperator},
		{"installing the Mesh and the demo", px.installDemo},
		{"starting reviews v1 and v2 (gRPC servers) and frontend (a proxyless gRPC client)", px.startApps},
	}
	if err := runSteps(ctx, steps, say, px.stop); err != nil {
		return nil, err
	}
	return px, nil
}

func (px *proxyless) startAPIServer(context.Context) error {
	hooks, err := envtest.LoadWebhooks()
	if err != nil {
		return err
	}
	if px.env, err = envtest.StartWith(envtest.Options{Webhooks: &hooks}); err != nil {
		return err
	}
	return copyFile(px.env.Kubeconfig, px.opts.kubeconfig)
}

func (px *proxyless) startOperator(ctx context.Context) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}}
	if err := px.env.Client.Create(ctx, ns); err != nil {
		return fmt.Errorf("creating namespace %s: %w", operatorNamespace, err)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	px.xdsAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	hooks := px.env.Webhooks
	cmd := exec.Command(px.opts.manager, "--kubeconfig="+px.env.Kubeconfig, "--namespace="+operatorNamespace,
		"--xds-address="+px.xdsAddr, "--xds-plaintext", "--metrics-bind-address=0", "--health-probe-bind-address=0",
		"--webhook-cert-dir="+hooks.LocalServingCertDir, "--webhook-host="+hooks.LocalServingHost,
		"--webhook-port="+strconv.Itoa(hooks.LocalServingPort))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if px.mgrLog, err = os.Create(filepath.Join(px.opts.logDir, "operator.log")); err != nil {
		return fmt.Errorf("creating the operator's log: %w", err)
	}
	if px.manager, err = netpod.StartProcTo("operator", cmd, px.mgrLog); err != nil {
		return err
	}
	webhook := net.JoinHostPort(hooks.LocalServingHost, strconv.Itoa(hooks.LocalServingPort))
	return envtest.Poll(ctx, 2*time.Minute, func() error {
		if exited, err := px.manager.Exited(); exited {
			return fmt.Errorf("the operator exited (%w); see %s", err, px.mgrLog.Name())
		}
		for _, a := range []string{webhook, px.xdsAddr} {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err != nil {
				return err
			}
			_ = c.Close()
		}
		return nil
	})
}

func freePort() (int, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer func() { _ = lis.Close() }()
	return lis.Addr().(*net.TCPAddr).Port, nil
}

// hostIP is an IPv4 address of this machine that is not loopback.
func hostIP() (string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", fmt.Errorf("listing addresses: %w", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
			return n.IP.String(), nil
		}
	}
	return "", errors.New("this machine has no non-loopback IPv4 address for the demo's endpoints")
}

func (px *proxyless) installDemo(ctx context.Context) error {
	objs := []client.Object{
		&meshv1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: meshv1alpha1.MeshName}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: demoNamespace}},
		reviewsPolicy(), reviewsRoute(),
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "reviews", Namespace: demoNamespace},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "reviews"}, Ports: []corev1.ServicePort{
				{Name: "grpc", Port: demoPort, TargetPort: intstr.FromInt32(demoPort), AppProtocol: ptr.To("grpc")}}},
		},
	}
	for _, o := range objs {
		if err := markApplied(o, px.env.Scheme); err != nil {
			return err
		}
		if err := px.env.Client.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}

// startApps starts the servers, their pods and EndpointSlices, and the
// client with its pod (annotated as a proxyless gRPC client).
func (px *proxyless) startApps(ctx context.Context) error {
	ip, err := hostIP()
	if err != nil {
		return err
	}
	for _, v := range []string{"v1", "v2"} {
		if err := px.startServer(ctx, ip, v); err != nil {
			return err
		}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "frontend", Namespace: demoNamespace, Labels: map[string]string{"app": "frontend"},
			Annotations: map[string]string{meshv1alpha1.AnnotationGenerator: meshv1alpha1.GeneratorGRPC}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/playground-frontend:1"}}},
	}
	if err := px.createPod(ctx, pod, ip); err != nil {
		return err
	}
	bootstrap := fmt.Sprintf(`{"xds_servers": [{"server_uri": %q, "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
 "node": {"id": %q, "metadata": {%q: %q}, "locality": {"zone": "playground"}}}`,
		px.xdsAddr, ir.GRPCNodeID(ip, "frontend", demoNamespace), meshv1alpha1.AnnotationGenerator, meshv1alpha1.GeneratorGRPC)
	cfg := netpod.AppConfig{Mode: netpod.GRPCClient, Name: "frontend", Target: fmt.Sprintf("xds:///reviews.%s:%d", demoNamespace, demoPort),
		Interval: callInterval, Timeout: 2 * time.Second}
	cmd, err := selfCommand(cfg, "GRPC_XDS_BOOTSTRAP_CONFIG="+bootstrap)
	if err != nil {
		return err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("frontend's output: %w", err)
	}
	if err := px.start("frontend.app", cmd, false); err != nil {
		return err
	}
	go px.count(out)
	return nil
}

func (px *proxyless) startServer(ctx context.Context, ip, version string) error {
	name := "reviews-" + version
	port, err := freePort()
	if err != nil {
		return err
	}
	cmd, err := selfCommand(netpod.AppConfig{Mode: netpod.GRPCServer, Name: name, Port: port})
	if err != nil {
		return err
	}
	if err := px.start(name+".app", cmd, true); err != nil {
		return err
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: demoNamespace, Labels: map[string]string{"app": "reviews", "version": version}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/playground-reviews:1"}}},
	}
	if err := px.createPod(ctx, pod, ip); err != nil {
		return err
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: demoNamespace, Labels: map[string]string{discoveryv1.LabelServiceName: "reviews"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("grpc"), Port: ptr.To(int32(port))}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: demoNamespace, Name: name, UID: pod.UID}}},
	}
	if err := px.env.Client.Create(ctx, slice); err != nil {
		return fmt.Errorf("creating the EndpointSlice of %s: %w", name, err)
	}
	return nil
}

func (px *proxyless) createPod(ctx context.Context, pod *corev1.Pod, ip string) error {
	if err := px.env.Client.Create(ctx, pod); err != nil {
		return fmt.Errorf("creating pod %s: %w", pod.Name, err)
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}
	if err := px.env.Client.Status().Update(ctx, pod); err != nil {
		return fmt.Errorf("setting the IP of pod %s: %w", pod.Name, err)
	}
	return nil
}

// selfCommand runs this binary as the app cfg, with extra environment.
func selfCommand(cfg netpod.AppConfig, env ...string) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("locating the running binary: %w", err)
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding the app config: %w", err)
	}
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(append(os.Environ(), netpod.AppEnv+"="+string(raw)), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd, nil
}

// start runs cmd, its output (stderr only when stdout is piped) in
// logDir/name.log.
func (px *proxyless) start(name string, cmd *exec.Cmd, allOutput bool) error {
	f, err := os.Create(filepath.Join(px.opts.logDir, name+".log"))
	if err != nil {
		return fmt.Errorf("creating the log of %s: %w", name, err)
	}
	px.logs = append(px.logs, f)
	var proc *netpod.Proc
	if allOutput {
		proc, err = netpod.StartProcTo(name, cmd, f)
	} else {
		cmd.Stderr = f
		proc, err = netpod.StartProcPiped(name, cmd)
	}
	if err != nil {
		return err
	}
	px.procs = append(px.procs, proc)
	return nil
}

// count tallies frontend's calls by the server that answered.
func (px *proxyless) count(out io.Reader) {
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var c netpod.CallResult
		if json.Unmarshal(sc.Bytes(), &c) != nil {
			continue
		}
		px.mu.Lock()
		if c.OK {
			px.byPod[c.Pod]++
		} else {
			px.failed++
		}
		px.mu.Unlock()
	}
}

// read is the client's counts now, as a reading.
func (px *proxyless) read() *reading {
	px.mu.Lock()
	defer px.mu.Unlock()
	r := &reading{at: time.Now(), subsets: map[string]*counters{}}
	for _, v := range []string{"v1", "v2"} {
		n := px.byPod["reviews-"+v]
		r.subsets[v] = &counters{total: n, buckets: map[float64]float64{}}
		r.all.total += n
	}
	r.all.total += px.failed
	r.all.errors5xx = px.failed
	return r
}

// snapshot is the view of the interval between two counts: no latency, no
// mTLS and no legacy caller without sidecars.
func proxylessSnapshot(prev, cur *reading) Snapshot {
	s := diff(prev, cur, prev)
	for i := range s.Subsets {
		s.Subsets[i].MTLS = "no"
		s.Subsets[i].P50, s.Subsets[i].P99 = math.NaN(), math.NaN()
	}
	s.All.Name = "all (frontend)"
	s.Proxyless = true
	return s
}

func (px *proxyless) stop() error {
	var errs []error
	for _, p := range px.procs {
		errs = append(errs, p.Stop(5*time.Second))
	}
	for _, f := range px.logs {
		errs = append(errs, f.Close())
	}
	if px.manager != nil {
		errs = append(errs, px.manager.Stop(10*time.Second))
	}
	if px.mgrLog != nil {
		errs = append(errs, px.mgrLog.Close())
	}
	if px.env != nil {
		errs = append(errs, px.env.Stop())
	}
	if err := os.Remove(px.opts.kubeconfig); err != nil && !os.IsNotExist(err) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
