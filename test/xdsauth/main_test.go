// Package xdsauth tests the authenticated xDS channel against a real API
// server: proxies present projected ServiceAccount tokens (audience
// capstan, bound to their pod) that the xDS server checks with TokenReview
// and binds to the pod their node ID names.
package xdsauth

import (
	"os"
	"testing"

	"github.com/capstanmesh/capstan/test/envtest"
)

var env *envtest.Env

func TestMain(m *testing.M) { os.Exit(envtest.Run(m, &env)) }
