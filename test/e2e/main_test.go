// Package e2e runs the whole operator (its admission webhooks, and the
// pipeline: inputs controller, runner, status reconcilers, xDS server)
// against a real kube-apiserver, with real
// gRPC servers on loopback as the service's pods and real xDS clients —
// grpc-go's xDS resolver and @grpc/grpc-js-xds — sending traffic through the
// config Capstan serves. Each test asserts the traffic it observes.
package e2e

import (
	"os"
	"testing"

	"github.com/capstanmesh/capstan/test/envtest"
)

var env *envtest.Env

// TestMain runs the tests against one API server; or, when started by a
// test as a separate client process (clientProcessEnv set), runs that
// client instead.
func TestMain(m *testing.M) {
	if target := os.Getenv(clientProcessEnv); target != "" {
		os.Exit(runClientProcess(target))
	}
	os.Exit(envtest.RunWithWebhooks(m, &env))
}
