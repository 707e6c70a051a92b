package dataplane

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	cmcontroller "github.com/cert-manager/cert-manager/pkg/controller"

	// cert-manager's controllers register themselves; the CA issuer too.
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"

	"github.com/capstanmesh/capstan/test/envtest"
)

// envoyVersionBinary is the Envoy `make envoy` installs (bin/envoy-<version>);
// CAPSTAN_ENVOY, which make exports, overrides it.
const envoyVersionBinary = "envoy-1.40.0"

// The package's shared state: one API server (with Capstan's webhooks and
// cert-manager's CRDs), one bridge, one operator; pods per test.
var (
	env     *envtest.Env
	network *Network
	op      *operator
	tools   struct{ envoy, capstanInit string }
	// skipReason, when set, says why the tests cannot run here.
	skipReason string
)

func TestMain(m *testing.M) {
	if cfg := os.Getenv(AppEnv); cfg != "" {
		os.Exit(RunApp(cfg))
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	switch {
	case runtime.GOOS != "linux":
		skipReason = "the data-plane tests need Linux network namespaces"
	case os.Geteuid() != 0:
		skipReason = "the data-plane tests need root (network namespaces, veth pairs, a bridge, iptables); CI runs them as root"
	}
	if skipReason != "" {
		return m.Run()
	}
	if err := findTools(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(filepath.Dir(tools.capstanInit)) }()
	n, err := NewNetwork(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "data plane network:", err)
		return 1
	}
	network = n
	code := 1
	crds, err := certManagerCRDs()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = envtest.RunWithWebhooksAnd(m, &env, envtest.Options{ServiceCIDR: n.ServiceCIDR.String(), CRDDirs: []string{crds}}, setUp)
	}
	if err := n.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "removing the data plane network:", err)
		code = max(code, 1)
	}
	return code
}

// setUp starts cert-manager's controllers and the operator, and points the
// xDS Service's names at the bridge.
func setUp(e *envtest.Env) (func() error, error) {
	ctx, cancel := context.WithCancel(context.Background())
	if err := ensureNamespace(ctx, e, operatorNamespace, nil); err != nil {
		cancel()
		return nil, err
	}
	cmDone, err := startCertManager(ctx, e)
	if err != nil {
		cancel()
		return nil, err
	}
	if err := network.SetHost(network.Gateway.String(), xdsHosts()...); err != nil {
		cancel()
		return nil, err
	}
	if op, err = startOperator(e, network.Gateway, operatorOptions{}); err != nil {
		cancel()
		<-cmDone
		return nil, err
	}
	return func() error {
		var err error
		if op != nil {
			err = op.stop()
		}
		cancel()
		<-cmDone
		return err
	}, nil
}

// findTools locates Envoy and builds capstan-init into a directory the
// proxy's user may read.
func findTools() error {
	root, err := envtest.RepoRoot()
	if err != nil {
		return err
	}
	tools.envoy = os.Getenv("CAPSTAN_ENVOY")
	if tools.envoy == "" {
		tools.envoy = filepath.Join(root, "bin", envoyVersionBinary)
	}
	if _, err := os.Stat(tools.envoy); err != nil {
		return fmt.Errorf("envoy: %w (run make envoy)", err)
	}
	dir, err := os.MkdirTemp("", Prefix+"-tools-")
	if err != nil {
		return err
	}
	tools.capstanInit = filepath.Join(dir, "capstan-init")
	cmd := exec.Command("go", "build", "-o", tools.capstanInit, "./cmd/capstan-init")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building capstan-init: %w\n%s", err, out)
	}
	return nil
}

// needRoot skips t when the data plane cannot be built here.
func needRoot(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

// certManagerCRDs locates cert-manager's CRDs in its Go module.
func certManagerCRDs() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/cert-manager/cert-manager").Output()
	if err != nil {
		return "", fmt.Errorf("locating the cert-manager module: %w", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "deploy", "crds")
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("cert-manager CRDs: %w", err)
	}
	return dir, nil
}

// startCertManager runs cert-manager's issuer controllers (Issuer
// readiness, CA signing, approval of requests) until ctx ends.
func startCertManager(ctx context.Context, e *envtest.Env) (<-chan struct{}, error) {
	factory, err := cmcontroller.NewContextFactory(ctx, cmcontroller.ContextOptions{
		Kubeconfig:         e.Kubeconfig,
		KubernetesAPIQPS:   100,
		KubernetesAPIBurst: 200,
		IssuerOptions:      cmcontroller.IssuerOptions{ClusterResourceNamespace: operatorNamespace},
	})
	if err != nil {
		return nil, fmt.Errorf("cert-manager context: %w", err)
	}
	var ctrls []cmcontroller.Interface
	for _, name := range []string{"issuers", "certificaterequests-approver", "certificaterequests-issuer-ca"} {
		construct, ok := cmcontroller.Known()[name]
		if !ok {
			return nil, fmt.Errorf("cert-manager controller %q is not registered", name)
		}
		c, err := construct(factory)
		if err != nil {
			return nil, fmt.Errorf("cert-manager controller %s: %w", name, err)
		}
		ctrls = append(ctrls, c)
	}
	cmctx, err := factory.Build()
	if err != nil {
		return nil, fmt.Errorf("cert-manager context: %w", err)
	}
	cmctx.KubeSharedInformerFactory.Start(ctx.Done())
	cmctx.SharedInformerFactory.Start(ctx.Done())
	done := make(chan struct{})
	go func() {
		defer close(done)
		errs := make(chan error, len(ctrls))
		for _, c := range ctrls {
			go func() { errs <- c.Run(1, ctx) }()
		}
		for range ctrls {
			if err := <-errs; err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
				fmt.Fprintf(os.Stderr, "cert-manager controller: %v\n", err)
			}
		}
	}()
	return done, nil
}
