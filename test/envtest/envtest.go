// Package envtest runs tests against a real kube-apiserver and etcd (the
// binaries in bin/k8s, built by `make envtest-assets`) with Capstan's CRDs
// installed. Start one control plane per test package from TestMain:
//
//	var env *envtest.Env
//
//	func TestMain(m *testing.M) { os.Exit(envtest.Run(m, &env)) }
//
// and give each test its own namespace with env.NewNamespace(t).
package envtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crenvtest "sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// Binaries are the programs envtest needs in KUBEBUILDER_ASSETS.
var Binaries = []string{"kube-apiserver", "etcd", "kubectl"}

// Env is a running control plane with Capstan's CRDs installed.
type Env struct {
	// Config reaches the API server as a cluster admin.
	Config *rest.Config
	// Client is a controller-runtime client (no cache) with Scheme.
	Client client.Client
	// Scheme holds the client-go kinds and Capstan's API.
	Scheme *runtime.Scheme
	// Kubeconfig is the path of a kubeconfig file for a system:masters user.
	Kubeconfig string
	// Kubectl is the path of the kubectl built with the API server.
	Kubectl string
	// RepoRoot is the directory holding go.mod.
	RepoRoot string
	// Webhooks, after StartWithWebhooks, holds the local host, port and
	// certificate directory the webhook server must serve on (LocalServingHost,
	// LocalServingPort, LocalServingCertDir); nil after Start.
	Webhooks *crenvtest.WebhookInstallOptions

	env    *crenvtest.Environment
	tmpDir string
}

// Run starts a control plane, stores it in *env, runs the package's tests
// and stops the control plane. It returns the exit code for os.Exit.
func Run(m *testing.M, env **Env) int {
	e, err := Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "envtest: %v\n", err)
		return 1
	}
	*env = e
	code := m.Run()
	if err := e.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "envtest: stopping: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Start starts etcd and kube-apiserver, installs the CRDs from
// config/crd/bases and writes an admin kubeconfig. Call Stop when done.
func Start() (*Env, error) {
	return start(nil)
}

// StartWithWebhooks is Start with the webhook configurations of webhooks
// (Paths, MutatingWebhooks, ValidatingWebhooks) installed: envtest points
// their clientConfig at a local address with a generated CA, which Env.Webhooks
// gives; serve them there (a manager's webhook server with that Host, Port
// and CertDir). Until then, requests the webhooks match fail.
func StartWithWebhooks(webhooks crenvtest.WebhookInstallOptions) (*Env, error) {
	return start(&webhooks)
}

// StartWithCRDs is Start with the CRDs of extra directories installed too
// (e.g. cert-manager's, from its module's deploy/crds).
func StartWithCRDs(dirs ...string) (*Env, error) {
	return start(nil, dirs...)
}

// Options are the settings of StartWith.
type Options struct {
	// Webhooks, when set, installs these webhook configurations (see StartWithWebhooks).
	Webhooks *crenvtest.WebhookInstallOptions
	// CRDDirs are directories of CRDs to install besides Capstan's.
	CRDDirs []string
	// ServiceCIDR is the API server's --service-cluster-ip-range, the
	// range ClusterIPs come from (envtest's default: 10.0.0.0/24).
	ServiceCIDR string
}

// StartWith is Start with opts.
func StartWith(opts Options) (*Env, error) {
	return startWith(opts)
}

func start(webhooks *crenvtest.WebhookInstallOptions, extraCRDs ...string) (*Env, error) {
	return startWith(Options{Webhooks: webhooks, CRDDirs: extraCRDs})
}

func startWith(opts Options) (*Env, error) {
	webhooks, extraCRDs := opts.Webhooks, opts.CRDDirs
	setLogger()
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	assets, err := assetsDir(root)
	if err != nil {
		return nil, err
	}
	scheme, err := NewScheme()
	if err != nil {
		return nil, err
	}
	e := &Env{Scheme: scheme, RepoRoot: root, Kubectl: filepath.Join(assets, "kubectl")}
	e.env = &crenvtest.Environment{
		Scheme:                scheme,
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     append([]string{filepath.Join(root, "config", "crd", "bases")}, extraCRDs...),
		ErrorIfCRDPathMissing: true,
	}
	if webhooks != nil {
		e.env.WebhookInstallOptions = *webhooks
		e.Webhooks = &e.env.WebhookInstallOptions
	}
	if opts.ServiceCIDR != "" {
		e.env.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", opts.ServiceCIDR)
	}
	if e.Config, err = e.env.Start(); err != nil {
		return nil, fmt.Errorf("starting kube-apiserver and etcd from %s: %w", assets, err)
	}
	if err := e.finishStart(); err != nil {
		return nil, errors.Join(err, e.Stop())
	}
	return e, nil
}

func (e *Env) finishStart() error {
	var err error
	if e.Client, err = client.New(e.Config, client.Options{Scheme: e.Scheme}); err != nil {
		return fmt.Errorf("creating a client: %w", err)
	}
	if e.tmpDir, err = os.MkdirTemp("", "capstan-envtest-"); err != nil {
		return fmt.Errorf("creating a temporary directory: %w", err)
	}
	user, err := e.env.AddUser(crenvtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("adding the admin user: %w", err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("rendering the admin kubeconfig: %w", err)
	}
	e.Kubeconfig = filepath.Join(e.tmpDir, "kubeconfig")
	if err := os.WriteFile(e.Kubeconfig, kubeconfig, 0o600); err != nil {
		return fmt.Errorf("writing the kubeconfig: %w", err)
	}
	return nil
}

// Stop stops the control plane and removes the temporary files. Stop
// managers started on it first.
func (e *Env) Stop() error {
	err := e.env.Stop()
	if e.tmpDir != "" {
		err = errors.Join(err, os.RemoveAll(e.tmpDir))
	}
	return err
}

// NewScheme returns a scheme with the client-go kinds and Capstan's API.
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("adding client-go kinds: %w", err)
	}
	if err := meshv1alpha1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("adding %s: %w", meshv1alpha1.GroupVersion, err)
	}
	return s, nil
}

// RepoRoot walks up from the working directory to the directory holding go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("finding the repository root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// assetsDir returns KUBEBUILDER_ASSETS (bin/k8s by default) after checking
// that every binary is there.
func assetsDir(root string) (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		dir = filepath.Join(root, "bin", "k8s")
	}
	var missing []string
	for _, name := range Binaries {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("%v not found in %s (KUBEBUILDER_ASSETS): run make envtest-assets", missing, dir)
	}
	return dir, nil
}

// setLogger sends controller-runtime's logs to stderr: errors only, unless
// CAPSTAN_TEST_LOG=debug.
func setLogger() {
	opts := []zap.Opts{zap.UseDevMode(true), zap.WriteTo(os.Stderr)}
	if os.Getenv("CAPSTAN_TEST_LOG") != "debug" {
		opts = append(opts, zap.Level(zapcore.ErrorLevel))
	}
	log.SetLogger(zap.New(opts...))
}

// Eventually calls check until it returns nil, failing t with check's last
// error when timeout passes first.
func Eventually(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	if err := Poll(context.Background(), timeout, check); err != nil {
		t.Fatal(err)
	}
}

// Poll calls check every 50ms until it returns nil or timeout passes, and
// then returns check's last error.
func Poll(ctx context.Context, timeout time.Duration, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("still failing after %s: %w", timeout, err)
		case <-tick.C:
		}
	}
}
