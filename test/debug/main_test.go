// Package debug runs capstanctl proxy-status and proxy-config through the
// real kube-apiserver's service proxy to the operator's debug endpoint,
// which reads a real xDS server that real ADS clients are connected to and
// checks every caller with the real API server (TokenReview and
// SubjectAccessReview, as the operator's generated ClusterRole allows).
//
// envtest runs no kube-proxy and no kubelet: the API server's service
// proxy dials the address of an EndpointSlice endpoint itself, and accepts
// it only when the endpoint names a Pod whose status holds that IP. The
// test writes both by hand, for the debug endpoint listening on one of this
// machine's own non-loopback addresses (the API refuses loopback endpoint
// addresses). Nothing leaves the machine.
package debug

import (
	"os"
	"testing"

	"github.com/capstanmesh/capstan/test/envtest"
)

var env *envtest.Env

func TestMain(m *testing.M) { os.Exit(envtest.Run(m, &env)) }
