package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/internal/app"
	"github.com/capstanmesh/capstan/test/envtest"
	"github.com/capstanmesh/capstan/test/xdsclient"
	"github.com/capstanmesh/capstan/xds/ir"
)

// Mesh.status.connectedProxies follows the proxies' xDS streams, by kind.
func TestMeshStatusCountsConnectedProxies(t *testing.T) {
	p := startPipelineWith(t, func(o *app.PipelineOptions) { o.MeshStatusInterval = 50 * time.Millisecond })
	createMesh(t, &meshv1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: meshv1alpha1.MeshName}})
	node := p.seedReviews(t)
	a := xdsclient.DialDelta(t, p.addr, node)
	a.Subscribe(t, resourcev3.ClusterType)
	b := xdsclient.DialDelta(t, p.addr, ir.SidecarNodeID("10.1.0.1", "reviews-v1", p.ns))
	b.Subscribe(t, resourcev3.ClusterType)
	waitConnected(t, meshv1alpha1.ConnectedProxies{Sidecars: 2})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	waitConnected(t, meshv1alpha1.ConnectedProxies{Sidecars: 1})
}

func waitConnected(t *testing.T, want meshv1alpha1.ConnectedProxies) {
	t.Helper()
	envtest.Eventually(t, xdsWait, func() error {
		m := &meshv1alpha1.Mesh{}
		if err := env.Client.Get(context.Background(), client.ObjectKey{Name: meshv1alpha1.MeshName}, m); err != nil {
			return err
		}
		if got := m.Status.ConnectedProxies; got == nil || *got != want {
			return fmt.Errorf("Mesh status.connectedProxies %+v, want %+v", got, want)
		}
		return nil
	})
}
