// Package certs tests workload certificates end to end against a real API
// server: the certificate manager issues them through the built-in CA or
// through cert-manager's real controllers (running in this process), and
// the xDS server delivers them over SDS to real ADS clients that
// authenticate with real ServiceAccount tokens.
package certs

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	cmcontroller "github.com/cert-manager/cert-manager/pkg/controller"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	// cert-manager's controllers register themselves; the CA issuer too.
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"

	"github.com/capstanmesh/capstan/test/envtest"
)

var env *envtest.Env

// operatorNamespace holds the built-in CA's Secret, the Issuers and
// Capstan's CertificateRequests.
const operatorNamespace = "capstan-system"

// certManagerControllers are the cert-manager controllers the tests need:
// issuer readiness and CA signing of CertificateRequests. cert-manager's
// own approver approves every request; like a cluster running an approval
// policy instead, the tests run theirs (runApprovalPolicy).
var certManagerControllers = []string{"issuers", "certificaterequests-issuer-ca"}

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	crds, err := certManagerCRDs()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	e, err := envtest.StartWithCRDs(crds)
	if err != nil {
		fmt.Fprintf(os.Stderr, "envtest: %v\n", err)
		return 1
	}
	env = e
	ctx, cancel := context.WithCancel(context.Background())
	stopped, err := setUp(ctx)
	code := 1
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = m.Run()
	}
	cancel()
	if stopped != nil {
		<-stopped
	}
	if err := e.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "envtest: stopping: %v\n", err)
		code = max(code, 1)
	}
	return code
}

func setUp(ctx context.Context) (<-chan struct{}, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}}
	if err := env.Client.Create(ctx, ns); err != nil {
		return nil, fmt.Errorf("creating namespace %s: %w", operatorNamespace, err)
	}
	done, err := startCertManager(ctx)
	if err != nil {
		return nil, err
	}
	policyDone, err := runApprovalPolicy(ctx)
	if err != nil {
		return nil, err
	}
	both := make(chan struct{})
	go func() { <-done; <-policyDone; close(both) }()
	return both, nil
}

// certManagerCRDs locates cert-manager's CRDs in its Go module, the
// version go.mod requires.
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

// startCertManager runs cert-manager's controllers against the API server
// until ctx is done; the channel closes when they have stopped.
func startCertManager(ctx context.Context) (<-chan struct{}, error) {
	factory, err := cmcontroller.NewContextFactory(ctx, cmcontroller.ContextOptions{
		Kubeconfig:         env.Kubeconfig,
		KubernetesAPIQPS:   100,
		KubernetesAPIBurst: 200,
		IssuerOptions:      cmcontroller.IssuerOptions{ClusterResourceNamespace: operatorNamespace},
	})
	if err != nil {
		return nil, fmt.Errorf("cert-manager context: %w", err)
	}
	var ctrls []cmcontroller.Interface
	for _, name := range certManagerControllers {
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
			if err := <-errs; err != nil && ctx.Err() == nil {
				fmt.Fprintf(os.Stderr, "cert-manager controller: %v\n", err)
			}
		}
	}()
	return done, nil
}
