package xdsauth

import (
	"context"
	"fmt"
	"testing"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/capstanmesh/capstan/test/envtest"
	"github.com/capstanmesh/capstan/test/xdsclient"
	"github.com/capstanmesh/capstan/xds/auth/kubeauth"
	"github.com/capstanmesh/capstan/xds/server"
)

func TestProxyWithPodTokenReceivesConfig(t *testing.T) {
	ns := env.NewNamespace(t)
	web := newWorkload(t, ns, "web", "web-0", "10.0.0.7")
	s := startServer(t, 0)
	s.publish(t, web.nodeID)
	tok := web.token(t, kubeauth.XDSTokenAudience)

	c := xdsclient.DialDeltaWith(t, s.addr, web.nodeID, xdsclient.WithBearerToken(tok))
	c.Subscribe(t, resourcev3.ClusterType)
	c.WaitFor(t, waitTimeout, func(st xdsclient.State) error {
		if _, ok := st[resourcev3.ClusterType][clusterName]; !ok {
			return fmt.Errorf("no cluster %s yet: %v", clusterName, st)
		}
		return nil
	})

	// State of the world works the same way.
	sotw := xdsclient.DialSotWWith(t, s.addr, web.nodeID, xdsclient.WithBearerToken(tok))
	sotw.Watch(t, resourcev3.ClusterType)
	sotw.WaitFor(t, waitTimeout, func(st xdsclient.State) error {
		if _, ok := st[resourcev3.ClusterType][clusterName]; !ok {
			return fmt.Errorf("no cluster %s yet", clusterName)
		}
		return nil
	})
	s.checkNoTokenLogged(t, tok)
}

func TestRefusals(t *testing.T) {
	ns := env.NewNamespace(t)
	a := newWorkload(t, ns, "sa-a", "pod-a", "10.0.1.1")
	b := newWorkload(t, ns, "sa-b", "pod-b", "10.0.1.2")
	s := startServer(t, 0)
	s.publish(t, a.nodeID)
	s.publish(t, b.nodeID)
	tokA, tokB := a.token(t, kubeauth.XDSTokenAudience), b.token(t, kubeauth.XDSTokenAudience)
	wrongAud := a.token(t, "not-capstan")

	t.Run("another pod's token", func(t *testing.T) {
		before := authFailures(t, server.ReasonPodMismatch)
		c, err := outcome(t, s, a.nodeID, xdsclient.WithBearerToken(tokB))
		wantRefused(t, c, err, server.ReasonPodMismatch)
		if got := authFailures(t, server.ReasonPodMismatch); got != before+1 {
			t.Errorf("capstan_xds_auth_failures_total{reason=%s} = %v, want %v", server.ReasonPodMismatch, got, before+1)
		}
	})
	t.Run("wrong audience", func(t *testing.T) {
		before := authFailures(t, server.ReasonInvalidToken)
		c, err := outcome(t, s, a.nodeID, xdsclient.WithBearerToken(wrongAud))
		wantRefused(t, c, err, server.ReasonInvalidToken)
		if got := authFailures(t, server.ReasonInvalidToken); got != before+1 {
			t.Errorf("capstan_xds_auth_failures_total{reason=%s} = %v, want %v", server.ReasonInvalidToken, got, before+1)
		}
	})
	t.Run("no token", func(t *testing.T) {
		c, err := outcome(t, s, a.nodeID)
		wantRefused(t, c, err, server.ReasonMissingToken)
	})
	t.Run("the right token is accepted", func(t *testing.T) {
		if _, err := outcome(t, s, a.nodeID, xdsclient.WithBearerToken(tokA)); err != nil {
			t.Fatalf("pod A's own token refused: %v", err)
		}
	})
	s.checkNoTokenLogged(t, tokA, tokB, wrongAud)
}

func TestDeletedServiceAccountTokenIsRefused(t *testing.T) {
	ns := env.NewNamespace(t)
	w := newWorkload(t, ns, "doomed", "doomed-0", "10.0.2.1")
	// No caching here: with it, a deleted ServiceAccount's token keeps
	// working on this server for up to AuthCacheTTL. The polling below
	// reviews the token many times and keeps every connection open until
	// the test ends: no per-peer review budget or connection cap either.
	s := startTLSLessServer(t, func(o *server.Options) {
		o.AuthCacheTTL = -1
		o.Limits.MaxConnectionsPerPeer = -1
		o.ReviewLimits = server.ReviewLimits{PerSecondPerPeer: 1e6, BurstPerPeer: 1e6}
	})
	s.publish(t, w.nodeID)
	tok := w.token(t, kubeauth.XDSTokenAudience)
	if _, err := outcome(t, s, w.nodeID, xdsclient.WithBearerToken(tok)); err != nil {
		t.Fatalf("token refused before the ServiceAccount was deleted: %v", err)
	}

	sa := &corev1.ServiceAccount{}
	sa.Namespace, sa.Name = w.ns, w.sa
	if err := env.Client.Delete(context.Background(), sa); err != nil {
		t.Fatalf("deleting the ServiceAccount: %v", err)
	}
	// The API server checks the ServiceAccount through its caches: poll
	// (about 10s in envtest).
	envtest.Eventually(t, 2*waitTimeout, func() error {
		c, err := outcome(t, s, w.nodeID, xdsclient.WithBearerToken(tok))
		if err == nil {
			return fmt.Errorf("token of deleted ServiceAccount %s/%s still accepted", w.ns, w.sa)
		}
		wantRefused(t, c, err, server.ReasonInvalidToken)
		return nil
	})
	s.checkNoTokenLogged(t, tok)
}

func TestDeletedPodTokenIsRefused(t *testing.T) {
	ns := env.NewNamespace(t)
	w := newWorkload(t, ns, "web", "web-0", "10.0.3.1")
	// A long review cache: the refusals below come from the server's own
	// pod check, not from the API server noticing the deletion.
	s := startServer(t, time.Hour)
	s.publish(t, w.nodeID)
	tok := w.token(t, kubeauth.XDSTokenAudience)
	if _, err := outcome(t, s, w.nodeID, xdsclient.WithBearerToken(tok)); err != nil {
		t.Fatalf("token refused before the pod was deleted: %v", err)
	}
	if err := env.Client.Delete(context.Background(), w.pod, client.GracePeriodSeconds(0)); err != nil {
		t.Fatalf("deleting the pod: %v", err)
	}
	// The review is cached and the API server may still accept the token,
	// but the pod lookup no longer finds the pod.
	envtest.Eventually(t, waitTimeout, func() error {
		c, err := outcome(t, s, w.nodeID, xdsclient.WithBearerToken(tok))
		if err == nil {
			return fmt.Errorf("token of deleted pod %s/%s still accepted", w.ns, w.pod.Name)
		}
		wantRefused(t, c, err, server.ReasonUnknownPod)
		return nil
	})

	// A new pod with the same name (a new UID) does not revive the old
	// pod's token.
	createPod(t, ns, w.sa, w.pod.Name, "10.0.3.1")
	envtest.Eventually(t, waitTimeout, func() error {
		c, err := outcome(t, s, w.nodeID, xdsclient.WithBearerToken(tok))
		if err == nil {
			return fmt.Errorf("token of the old pod %s/%s accepted for its replacement", w.ns, w.pod.Name)
		}
		wantRefused(t, c, err, server.ReasonPodUIDMismatch)
		return nil
	})
	s.checkNoTokenLogged(t, tok)
}
