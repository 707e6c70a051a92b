package integration

import (
	"context"
	"fmt"
	"testing"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/internal/app"
	"github.com/capstanmesh/capstan/test/envtest"
	"github.com/capstanmesh/capstan/test/xdsclient"
	"github.com/capstanmesh/capstan/xds/ir"
)

// ackingProxies is the number of delta ADS clients that ACK one route change.
const ackingProxies = 500

// 500 proxies ACKing one change of a MeshRoute cause a bounded number of
// writes of its status, not one per ACK: counts are coalesced in the runner
// and written only when they changed.
func TestStatusWritesAreBoundedWhenManyProxiesACK(t *testing.T) {
	p := startPipelineWith(t, func(o *app.PipelineOptions) { o.Limits.MaxConnectionsPerPeer = -1 })
	nodes := []string{p.seedReviews(t), ir.SidecarNodeID("10.1.0.1", "reviews-v1", p.ns), ir.SidecarNodeID("10.1.0.2", "reviews-v2", p.ns)}
	for i := range ackingProxies {
		name, ip := fmt.Sprintf("client-%d", i), fmt.Sprintf("10.2.%d.%d", i/250, i%250+1)
		p.pod(t, name, ip, map[string]string{"app": "client"}, true)
		nodes = append(nodes, ir.SidecarNodeID(ip, name, p.ns))
	}
	p.create(t, canaryRoute(p.ns, "reviews"))
	for _, node := range nodes {
		xdsclient.DialDelta(t, p.addr, node).Subscribe(t, resourcev3.RouteType, "9080")
	}
	total := len(nodes)
	mr := waitProxies(t, p.ns, "reviews", total, total)

	w, err := watchRoute(t, p.ns, "reviews", mr.ResourceVersion)
	if err != nil {
		t.Fatal(err)
	}
	updateRoute(t, p.ns, "reviews", func(mr *meshv1alpha1.MeshRoute) {
		mr.Spec.HTTP[0].Route[0].Weight, mr.Spec.HTTP[0].Route[1].Weight = ptr.To[int32](50), ptr.To[int32](50)
	})
	final := waitProxies(t, p.ns, "reviews", total, total)
	writes := statusWritesUntil(t, w, final.ResourceVersion)
	t.Logf("%d proxies ACKed generation %d: %d status writes", total, final.Generation, writes)
	if limit := total / 10; writes > limit {
		t.Errorf("%d status writes while %d proxies ACKed one change, want at most %d", writes, total, limit)
	}
	if writes < 1 {
		t.Errorf("no status write after the change; want the counts to move to the new generation")
	}
}

// waitProxies polls until the route's status.proxies reads programmed/total
// at its current generation, with Programmed True.
func waitProxies(t *testing.T, ns, name string, programmed, total int) *meshv1alpha1.MeshRoute {
	t.Helper()
	var mr *meshv1alpha1.MeshRoute
	envtest.Eventually(t, xdsWait, func() error {
		var err error
		if mr, err = getRoute(ns, name); err != nil {
			return err
		}
		if want := fmt.Sprintf("%d/%d", programmed, total); mr.Status.Proxies == nil || mr.Status.Proxies.Summary != want {
			return fmt.Errorf("status.proxies %+v, want %s", mr.Status.Proxies, want)
		}
		return wantCondition(mr.Status.Conditions, meshv1alpha1.ConditionProgrammed, metav1.ConditionTrue, mr.Generation)
	})
	return mr
}

func watchRoute(t *testing.T, ns, name, from string) (watch.Interface, error) {
	c, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		return nil, fmt.Errorf("making a watching client: %w", err)
	}
	w, err := c.Watch(context.Background(), &meshv1alpha1.MeshRouteList{}, client.InNamespace(ns),
		client.MatchingFields{"metadata.name": name}, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: from}})
	if err != nil {
		return nil, fmt.Errorf("watching MeshRoute %s/%s: %w", ns, name, err)
	}
	t.Cleanup(w.Stop)
	return w, nil
}

// statusWritesUntil counts the modifications seen on w, up to the one with
// resource version last, that left the generation unchanged: the status writes.
func statusWritesUntil(t *testing.T, w watch.Interface, last string) int {
	t.Helper()
	writes, gen := 0, int64(0)
	for ev := range w.ResultChan() {
		mr, ok := ev.Object.(*meshv1alpha1.MeshRoute)
		if !ok || ev.Type != watch.Modified {
			t.Fatalf("unexpected watch event %s %T", ev.Type, ev.Object)
		}
		if mr.Generation == gen {
			writes++
		}
		gen = mr.Generation
		if mr.ResourceVersion == last {
			return writes
		}
	}
	t.Fatal("the watch ended before the final status was seen")
	return 0
}
