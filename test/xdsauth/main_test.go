// Package xdsauth tests the authenticated xDS channel against a real API
// server: proxies present projected ServiceAccount tokens (audience
// capstan, bound to their pod) that the xDS server checks with TokenReview
// and binds to the pod their node ID names.
package xdsauth

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/capstanmesh/capstan/pki/builtin"
	"github.com/capstanmesh/capstan/test/envtest"
)

var (
	env *envtest.Env
	// meshCA is the built-in CA that signs the xDS serving certificate; its
	// root is also the process's system trust (SSL_CERT_FILE), which is
	// what gRPC Go's STS credentials verify the token exchange against.
	meshCA *builtin.CA
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "xdsauth-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := 1
	if err := trustMeshRoot(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = envtest.Run(m, &env)
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// trustMeshRoot creates meshCA and makes its root the system trust of this
// process. It must run before anything loads the system roots.
func trustMeshRoot(dir string) error {
	ctx := context.Background()
	ca, err := builtin.New(ctx, &builtin.MemoryStore{}, builtin.Options{TrustDomain: "cluster.local"})
	if err != nil {
		return fmt.Errorf("creating the test CA: %w", err)
	}
	bundle, err := ca.TrustBundle(ctx)
	if err != nil {
		return fmt.Errorf("reading the test CA's bundle: %w", err)
	}
	path := filepath.Join(dir, "roots.pem")
	if err := os.WriteFile(path, bundle, 0o600); err != nil {
		return fmt.Errorf("writing the test CA's bundle: %w", err)
	}
	meshCA = ca
	return os.Setenv("SSL_CERT_FILE", path)
}
