// Package integration tests the API (CRD schemas, CEL rules, defaults,
// printer columns) and the status reconcilers against a real kube-apiserver.
package integration

import (
	"os"
	"testing"

	"github.com/capstanmesh/capstan/test/envtest"
)

var env *envtest.Env

func TestMain(m *testing.M) { os.Exit(envtest.Run(m, &env)) }
