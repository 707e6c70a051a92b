package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/internal/netpod"
	"github.com/capstanmesh/capstan/test/envtest"
	"github.com/capstanmesh/capstan/webhook/inject"
)

// kubelet does a node's part for the playground's pods: it creates each
// pod through the API server (so the real webhook injects it), gives it a
// network namespace and its IP, runs the injected capstan-init and Envoy,
// and starts the pod's app. Logs go to files under logDir.
type kubelet struct {
	c       client.Client
	cs      *kubernetes.Clientset
	net     *netpod.Network
	envoy   string
	init    string
	logDir  string
	workDir string
}

// podSpec is one pod of the demo.
type podSpec struct {
	name, namespace, app string
	labels               map[string]string
	noInject             bool
	cfg                  netpod.AppConfig
}

// runningPod is a started pod: its object, namespace and processes.
type runningPod struct {
	obj   *corev1.Pod
	netns *netpod.Netns
	procs []*netpod.Proc
	logs  []*os.File
}

// startPod starts spec and, for an injected pod, waits for its sidecar to
// be ready.
func (k *kubelet) startPod(ctx context.Context, spec podSpec) (*runningPod, error) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: spec.app, Namespace: spec.namespace}}
	if err := k.c.Create(ctx, sa); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("creating ServiceAccount %s: %w", spec.app, err)
	}
	ns, err := k.net.AddNetns(ctx, spec.name)
	if err != nil {
		return nil, err
	}
	p := &runningPod{netns: ns}
	if p.obj, err = k.createPod(ctx, spec, ns.IP.String()); err != nil {
		return p, err
	}
	if inject.IsInjected(p.obj) == spec.noInject {
		return p, fmt.Errorf("pod %s: injected %v, want %v", spec.name, !spec.noInject, spec.noInject)
	}
	if !spec.noInject {
		if err := k.startSidecar(ctx, p); err != nil {
			return p, err
		}
	}
	cfg := spec.cfg
	cfg.Name = spec.name
	cmd, err := netpod.AppCommand(context.Background(), ns, cfg)
	if err != nil {
		return p, err
	}
	if err := k.start(p, spec.name+".app", cmd); err != nil {
		return p, err
	}
	if spec.noInject {
		return p, nil
	}
	return p, k.waitReady(ctx, p)
}

// createPod creates the pod through the webhooks and writes its status as
// the kubelet would once its network is up.
func (k *kubelet) createPod(ctx context.Context, spec podSpec, ip string) (*corev1.Pod, error) {
	labels := map[string]string{"app": spec.app}
	for key, v := range spec.labels {
		labels[key] = v
	}
	if spec.noInject {
		labels[meshv1alpha1.LabelInject] = "false"
	}
	obj := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: spec.name, Namespace: spec.namespace, Labels: labels},
		Spec: corev1.PodSpec{
			// envtest's API server runs without the ServiceAccount admission plugin.
			ServiceAccountName: spec.app,
			Containers:         []corev1.Container{{Name: "app", Image: "example.com/playground-" + spec.app + ":1"}},
		},
	}
	if err := k.c.Create(ctx, obj); err != nil {
		return nil, fmt.Errorf("creating pod %s: %w", spec.name, err)
	}
	gw := k.net.Gateway.String()
	obj.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
		HostIP: gw, HostIPs: []corev1.HostIP{{IP: gw}}}
	if err := k.c.Status().Update(ctx, obj); err != nil {
		return nil, fmt.Errorf("setting the IP of pod %s: %w", spec.name, err)
	}
	return obj, nil
}

// startSidecar writes the pod's volumes, runs capstan-init in its
// namespace and starts Envoy as the proxy's user.
func (k *kubelet) startSidecar(ctx context.Context, p *runningPod) error {
	dir := filepath.Join(k.workDir, p.obj.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	vols := netpod.Volumes{
		Token: func(ctx context.Context, aud string, exp int64) (string, error) { return k.token(ctx, p.obj, aud, exp) },
		ConfigMap: func(ctx context.Context, name string) (map[string]string, error) {
			cm := &corev1.ConfigMap{}
			err := envtest.Poll(ctx, time.Minute, func() error {
				return k.c.Get(ctx, client.ObjectKey{Namespace: p.obj.Namespace, Name: name}, cm)
			})
			return cm.Data, err
		},
	}
	if err := netpod.RunInit(ctx, p.obj, p.netns, k.init, filepath.Join(dir, "init"), vols); err != nil {
		return err
	}
	proxyDir := filepath.Join(dir, "proxy")
	c, argv, err := netpod.EnvoyCommand(ctx, p.obj, p.netns, k.envoy, proxyDir, vols, "--use-dynamic-base-id")
	if err != nil {
		return err
	}
	cmd := p.netns.Command(context.Background(), argv[0], argv[1:]...)
	// The native resolver reads the pod's hosts file for the token exchange too.
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GRPC_DNS_RESOLVER=native"}, c.Env...)
	return k.start(p, p.obj.Name+".envoy", cmd)
}

// start runs cmd with its output in logDir/name.log.
func (k *kubelet) start(p *runningPod, name string, cmd *exec.Cmd) error {
	f, err := os.Create(filepath.Join(k.logDir, name+".log"))
	if err != nil {
		return fmt.Errorf("creating the log of %s: %w", name, err)
	}
	p.logs = append(p.logs, f)
	// Its own process group: Ctrl-C reaches the playground only, which
	// then stops the pods in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	proc, err := netpod.StartProcTo(name, cmd, f)
	if err != nil {
		return err
	}
	p.procs = append(p.procs, proc)
	return nil
}

// token is a pod-bound token of the pod's ServiceAccount, as the kubelet
// requests for a projected volume.
func (k *kubelet) token(ctx context.Context, obj *corev1.Pod, audience string, exp int64) (string, error) {
	tr := &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{
		Audiences: []string{audience}, ExpirationSeconds: ptr.To(exp),
		BoundObjectRef: &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: obj.Name, UID: obj.UID},
	}}
	out, err := k.cs.CoreV1().ServiceAccounts(obj.Namespace).CreateToken(ctx, obj.Spec.ServiceAccountName, tr, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("TokenRequest for %s/%s: %w", obj.Namespace, obj.Spec.ServiceAccountName, err)
	}
	return out.Status.Token, nil
}

// waitReady polls the sidecar's readiness as the startup probe does.
func (k *kubelet) waitReady(ctx context.Context, p *runningPod) error {
	url := "http://" + p.netns.IP.String() + ":" + strconv.Itoa(meshv1alpha1.PortHealth) + "/healthz/ready"
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	return envtest.Poll(ctx, 90*time.Second, func() error {
		for _, proc := range p.procs {
			if exited, err := proc.Exited(); exited {
				return fmt.Errorf("%s exited (%w); see %s", proc.Name, err, k.logDir)
			}
		}
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: sidecar not ready (%d)", p.obj.Name, resp.StatusCode)
		}
		return nil
	})
}

// stop stops the pod's processes and removes its namespace.
func (p *runningPod) stop() error {
	var errs []error
	for _, proc := range p.procs {
		errs = append(errs, proc.Stop(5*time.Second))
	}
	for _, f := range p.logs {
		errs = append(errs, f.Close())
	}
	if p.netns != nil {
		errs = append(errs, p.netns.Remove())
	}
	return errors.Join(errs...)
}

// service creates a Service selecting labels on port 9080 and its
// EndpointSlice with the pods (as the EndpointSlice controller would), and
// resolves its names to its ClusterIP in every pod.
func (k *kubelet) service(ctx context.Context, ns, name string, selector map[string]string, pods ...*runningPod) error {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: selector, Ports: []corev1.ServicePort{
			{Name: "http", Port: demoPort, TargetPort: intstr.FromInt32(demoPort)}}},
	}
	if err := k.c.Create(ctx, svc); err != nil {
		return fmt.Errorf("creating Service %s: %w", name, err)
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
			Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](demoPort), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	for _, p := range pods {
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{p.obj.Status.PodIP},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: p.obj.Name, UID: p.obj.UID},
		})
	}
	if err := k.c.Create(ctx, slice); err != nil {
		return fmt.Errorf("creating the EndpointSlice of %s: %w", name, err)
	}
	host := name + "." + ns
	return k.net.SetHost(svc.Spec.ClusterIP, name, host, host+".svc", host+".svc.cluster.local")
}
