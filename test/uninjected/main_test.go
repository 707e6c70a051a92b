// Package uninjected tests the un-injected pods reconciler (controllers/uninjected) against a real
// kube-apiserver: pods that predate the namespace's injection label are
// reported in the Mesh status and Events, and their workloads restarted one
// at a time.
package uninjected

import (
	"os"
	"testing"

	"github.com/capstanmesh/capstan/test/envtest"
)

var env *envtest.Env

func TestMain(m *testing.M) { os.Exit(envtest.Run(m, &env)) }
