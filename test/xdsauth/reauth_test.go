package xdsauth

import (
	"context"
	"testing"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/capstanmesh/capstan/test/xdsclient"
	"github.com/capstanmesh/capstan/xds/auth/kubeauth"
	"github.com/capstanmesh/capstan/xds/server"
)

// servedStream opens w's stream with its real token and waits for config.
func servedStream(t *testing.T, s *xdsServer, w *workload, tok string) *xdsclient.Delta {
	t.Helper()
	c, err := outcome(t, s, w.nodeID, xdsclient.WithBearerToken(tok))
	if err != nil {
		t.Fatalf("stream of %s refused: %v", w.nodeID, err)
	}
	return c
}

// wantStreamClosed waits for an open stream to end with code and reason.
func wantStreamClosed(t *testing.T, c *xdsclient.Delta, code codes.Code, reasons ...string) {
	t.Helper()
	err := c.WaitForError(t, waitTimeout)
	if status.Code(err) != code {
		t.Fatalf("stream ended with %v, want %v", err, code)
	}
	msg := status.Convert(err).Message()
	for _, r := range reasons {
		if msg == "xDS stream refused: "+r {
			return
		}
	}
	t.Fatalf("stream ended with %q, want one of %v", msg, reasons)
}

// TestStreamClosedWhenPodDeleted: the periodic recheck closes an open
// stream once its pod is deleted, and the token then opens nothing.
func TestStreamClosedWhenPodDeleted(t *testing.T) {
	ns := env.NewNamespace(t)
	w := newWorkload(t, ns, "web", "web-0", "10.0.7.1")
	s := startTLSLessServer(t, func(o *server.Options) { o.RecheckInterval = 100 * time.Millisecond })
	s.publish(t, w.nodeID)
	tok := w.token(t, kubeauth.XDSTokenAudience)
	c := servedStream(t, s, w, tok)
	if err := env.Client.Delete(context.Background(), w.pod, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	wantStreamClosed(t, c, codes.PermissionDenied, server.ReasonUnknownPod)
	s.checkNoTokenLogged(t, tok)
}

// TestStreamClosedWhenPodReplaced: a pod deleted and created again under
// the same name (a new UID) closes the old pod's stream when the pod
// watcher calls RecheckPod, without waiting for the periodic recheck.
func TestStreamClosedWhenPodReplaced(t *testing.T) {
	ns := env.NewNamespace(t)
	w := newWorkload(t, ns, "web", "web-0", "10.0.7.2")
	s := startTLSLessServer(t, func(o *server.Options) { o.RecheckInterval = time.Hour })
	s.publish(t, w.nodeID)
	tok := w.token(t, kubeauth.XDSTokenAudience)
	c := servedStream(t, s, w, tok)
	if err := env.Client.Delete(context.Background(), w.pod, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	createPod(t, ns, w.sa, w.pod.Name, "10.0.7.2")
	s.RecheckPod(ns, w.pod.Name)
	wantStreamClosed(t, c, codes.PermissionDenied, server.ReasonPodUIDMismatch)
}

// TestStreamClosedWhenTokenExpires: a real token (the shortest TokenRequest
// allows, 10 minutes) on a server whose clock is moved past its expiry:
// the open stream is closed and the token, still cached and still valid
// for the API server's real clock, opens no new stream.
func TestStreamClosedWhenTokenExpires(t *testing.T) {
	ns := env.NewNamespace(t)
	w := newWorkload(t, ns, "web", "web-0", "10.0.7.3")
	clk := clocktesting.NewFakeClock(time.Now())
	s := startTLSLessServer(t, func(o *server.Options) { o.Clock, o.RecheckInterval = clk, time.Second })
	s.publish(t, w.nodeID)
	tok := w.token(t, kubeauth.XDSTokenAudience)
	c := servedStream(t, s, w, tok)
	waitFor(t, "the recheck ticker", clk.HasWaiters)
	clk.Step(11 * time.Minute)
	wantStreamClosed(t, c, codes.Unauthenticated, server.ReasonTokenExpired)

	c2 := xdsclient.DialDeltaWith(t, s.addr, w.nodeID, xdsclient.WithBearerToken(tok))
	_ = c2.TrySubscribe(resourcev3.ClusterType)
	wantStreamClosed(t, c2, codes.Unauthenticated, server.ReasonTokenExpired)
	s.checkNoTokenLogged(t, tok)
}

// TestPodRecheckerClosesDeletedPodsStream: the operator's pod watch
// (kubeauth.PodRechecker, in a real manager) calls RecheckPod when a
// pod is deleted, which closes its stream without the periodic recheck.
func TestPodRecheckerClosesDeletedPodsStream(t *testing.T) {
	ns := env.NewNamespace(t)
	w := newWorkload(t, ns, "web", "web-0", "10.0.7.4")
	s := startTLSLessServer(t, func(o *server.Options) { o.RecheckInterval = time.Hour })
	seen := make(chan struct{}, 1)
	env.StartManager(t, func(mgr ctrl.Manager) error {
		return (&kubeauth.PodRechecker{OnChange: func(ns, n string) {
			select {
			case seen <- struct{}{}:
			default:
			}
			s.RecheckPod(ns, n)
		}}).SetupWithManager(mgr)
	}, ns)
	// The watch runs once it reported the existing pod (the manager's
	// controllers start after its caches sync).
	select {
	case <-seen:
	case <-time.After(waitTimeout):
		t.Fatal("the pod watch reported no pod")
	}
	s.publish(t, w.nodeID)
	tok := w.token(t, kubeauth.XDSTokenAudience)
	c := servedStream(t, s, w, tok)
	if err := env.Client.Delete(context.Background(), w.pod, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	wantStreamClosed(t, c, codes.PermissionDenied, server.ReasonUnknownPod)
}
