package e2e

import (
	"fmt"
	"testing"

	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

func statusCode(err error) string { return status.Code(err).String() }

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// The MeshRoute's status counts the proxies that ACKed their config: none
// before the client connects, the client once it has received and ACKed it.
func TestRouteStatusCountsACKs(t *testing.T) {
	m := startCanary(t, 90, 10)
	mr := &meshv1alpha1.MeshRoute{ObjectMeta: metav1.ObjectMeta{Name: service, Namespace: m.ns}}
	routeProgrammed(t, mr)
	if n := programmedProxies(mr); n != 0 {
		t.Fatalf("before any client connected: status.proxies.programmed = %d, want 0", n)
	}

	c := m.dial(t)
	if got := tally(c, 10); got["v1"]+got["v2"] != 10 {
		t.Fatalf("calls: %v", got)
	}
	envtestEventually(t, func() error {
		routeProgrammed(t, mr)
		if p := mr.Status.Proxies; p == nil || p.Programmed != 1 || p.Summary != fmt.Sprintf("1/%d", p.Total) {
			return errorf("status.proxies = %+v, want 1 programmed (the gRPC client)", p)
		}
		return nil
	})
	st, ok := m.server.ProxyStatus(m.nodeID())
	if !ok || !st.InSync() {
		t.Errorf("server's status of %s: %+v, want in sync", m.nodeID(), st)
	}
}

func programmedProxies(mr *meshv1alpha1.MeshRoute) int32 {
	if mr.Status.Proxies == nil {
		return 0
	}
	return mr.Status.Proxies.Programmed
}
