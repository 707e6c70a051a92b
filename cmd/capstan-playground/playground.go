package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/internal/netpod"
	"github.com/capstanmesh/capstan/test/envtest"
	"github.com/capstanmesh/capstan/webhook/inject"
)

// operatorNamespace is where the operator runs and the injector points
// sidecars (capstan-xds.capstan-system.svc).
const operatorNamespace = "capstan-system"

// tokenExchangePort is the xDS Service's second port: the injected token
// exchange URL has none, so it is 443, which leads to the operator's 15012.
const tokenExchangePort = 443

// playground is everything one run started, stopped in reverse order.
type playground struct {
	opts    options
	net     *netpod.Network
	env     *envtest.Env
	manager *netpod.Proc
	mgrLog  *os.File
	fwd     net.Listener
	fwdWG   sync.WaitGroup
	kubelet *kubelet
	pods    map[string]*runningPod
}

// start brings the playground up: network, API server, operator, demo.
func start(ctx context.Context, opts options, say func(string, ...any)) (*playground, error) {
	pg := &playground{opts: opts, pods: map[string]*runningPod{}}
	steps := []step{
		{"creating the pods' bridge and sweeping leftovers of earlier runs", pg.startNetwork},
		{"starting etcd and kube-apiserver (bin/k8s) with Capstan's CRDs and webhooks", pg.startAPIServer},
		{"starting the operator (bin/manager: controllers, webhooks, xDS over TLS, built-in CA)", pg.startOperator},
		{"installing the Mesh and the demo namespace", pg.installMesh},
		{"starting the demo pods (capstan-init and Envoy from the injected spec)", pg.startDemo},
	}
	if err := runSteps(ctx, steps, say, pg.stop); err != nil {
		return nil, err
	}
	return pg, nil
}

// step is one stage of bringing a playground up, said before it runs.
type step struct {
	what string
	do   func(context.Context) error
}

// runSteps runs the steps in order; when one fails, stop undoes what the
// earlier ones started.
func runSteps(ctx context.Context, steps []step, say func(string, ...any), stop func() error) error {
	for _, s := range steps {
		say("playground: %s", s.what)
		if err := s.do(ctx); err != nil {
			return errors.Join(fmt.Errorf("%s: %w", s.what, err), stop())
		}
	}
	return nil
}

func (pg *playground) startNetwork(ctx context.Context) error {
	if err := killOrphanedControlPlane(pg.opts.logDir); err != nil {
		return err
	}
	n, err := netpod.NewNetwork(ctx)
	pg.net = n
	return err
}

func (pg *playground) startAPIServer(context.Context) error {
	hooks, err := envtest.LoadWebhooks()
	if err != nil {
		return err
	}
	if pg.env, err = envtest.StartWith(envtest.Options{Webhooks: &hooks, ServiceCIDR: pg.net.ServiceCIDR.String()}); err != nil {
		return err
	}
	if err := recordControlPlane(pg.opts.logDir); err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(pg.env.Config)
	if err != nil {
		return fmt.Errorf("creating a clientset: %w", err)
	}
	pg.kubelet = &kubelet{c: pg.env.Client, cs: cs, net: pg.net, envoy: pg.opts.envoy, init: pg.opts.capstanInit,
		logDir: pg.opts.logDir, workDir: filepath.Join(pg.opts.logDir, "pods")}
	if err := os.MkdirAll(pg.kubelet.workDir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", pg.kubelet.workDir, err)
	}
	return copyFile(pg.env.Kubeconfig, pg.opts.kubeconfig)
}

// startOperator runs bin/manager as in a cluster, against the local API
// server: webhooks where envtest pointed the API server, xDS on the
// bridge (the names the injector gives sidecars resolve there in every
// pod), and the token exchange's port forwarded to it.
func (pg *playground) startOperator(ctx context.Context) error {
	gw := pg.net.Gateway
	xds := netip.AddrPortFrom(gw, meshv1alpha1.PortXDS).String()
	hooks := pg.env.Webhooks
	cmd := exec.Command(pg.opts.manager, "--kubeconfig="+pg.env.Kubeconfig, "--namespace="+operatorNamespace,
		"--xds-address="+xds, "--metrics-bind-address=0", "--health-probe-bind-address=0",
		"--webhook-cert-dir="+hooks.LocalServingCertDir, "--webhook-host="+hooks.LocalServingHost,
		"--webhook-port="+strconv.Itoa(hooks.LocalServingPort))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}}
	if err := pg.env.Client.Create(ctx, ns); err != nil {
		return fmt.Errorf("creating namespace %s: %w", operatorNamespace, err)
	}
	var err error
	if pg.mgrLog, err = os.Create(filepath.Join(pg.opts.logDir, "operator.log")); err != nil {
		return fmt.Errorf("creating the operator's log: %w", err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Ctrl-C reaches the playground only
	if pg.manager, err = netpod.StartProcTo("operator", cmd, pg.mgrLog); err != nil {
		return err
	}
	webhook := net.JoinHostPort(hooks.LocalServingHost, strconv.Itoa(hooks.LocalServingPort))
	if err := pg.waitListening(ctx, webhook, xds); err != nil {
		return err
	}
	if pg.fwd, err = net.Listen("tcp", netip.AddrPortFrom(gw, tokenExchangePort).String()); err != nil {
		return fmt.Errorf("listening for the token exchange: %w", err)
	}
	pg.fwdWG.Add(1)
	go pg.forward(xds)
	host := inject.XDSServiceName + "." + operatorNamespace + ".svc"
	return pg.net.SetHost(gw.String(), host, host+".cluster.local")
}

// waitListening polls until every address accepts connections, or the
// operator exits.
func (pg *playground) waitListening(ctx context.Context, addrs ...string) error {
	return envtest.Poll(ctx, 2*time.Minute, func() error {
		if exited, err := pg.manager.Exited(); exited {
			return fmt.Errorf("the operator exited (%w); see %s", err, pg.mgrLog.Name())
		}
		for _, a := range addrs {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err != nil {
				return err
			}
			_ = c.Close()
		}
		return nil
	})
}

// forward copies connections to the token exchange port to the xDS port,
// as the xDS Service does in a cluster.
func (pg *playground) forward(to string) {
	defer pg.fwdWG.Done()
	for {
		in, err := pg.fwd.Accept()
		if err != nil {
			return
		}
		go func() {
			defer func() { _ = in.Close() }()
			out, err := net.Dial("tcp", to)
			if err != nil {
				return
			}
			defer func() { _ = out.Close() }()
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
			go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
			<-done
		}()
	}
}

// stop stops what start started, in reverse order, and removes the
// kubeconfig it wrote.
func (pg *playground) stop() error {
	var errs []error
	for _, p := range pg.pods {
		errs = append(errs, p.stop())
	}
	if pg.fwd != nil {
		errs = append(errs, pg.fwd.Close())
		pg.fwdWG.Wait()
	}
	if pg.manager != nil {
		errs = append(errs, pg.manager.Stop(10*time.Second))
	}
	if pg.mgrLog != nil {
		errs = append(errs, pg.mgrLog.Close())
	}
	if pg.env != nil {
		errs = append(errs, pg.env.Stop())
		if err := os.Remove(filepath.Join(pg.opts.logDir, pidsFile)); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
	}
	if pg.net != nil {
		errs = append(errs, pg.net.Close())
	}
	if err := os.Remove(pg.opts.kubeconfig); err != nil && !os.IsNotExist(err) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// copyFile writes from's content to to atomically (a reader never sees
// half a kubeconfig).
func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return fmt.Errorf("reading %s: %w", from, err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(to), err)
	}
	tmp := to + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, to); err != nil {
		return fmt.Errorf("writing %s: %w", to, err)
	}
	return nil
}
