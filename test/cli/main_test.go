// Package cli runs capstanctl against a real kube-apiserver: analyze on a
// live state built in the API server, check, restart-uninjected, and
// `kubectl capstan analyze` through kubectl's plugin mechanism with the
// kubectl built beside the API server.
package cli

import (
	"os"
	"testing"

	"github.com/capstanmesh/capstan/test/envtest"
)

var env *envtest.Env

// TestMain serves Capstan's admission webhooks, so that check finds the
// injection webhook reachable and pods created in an enabled namespace are
// injected: the tests create the pods that predate injection before they
// label the namespace, as happens in a real cluster.
func TestMain(m *testing.M) { os.Exit(envtest.RunWithWebhooks(m, &env)) }
