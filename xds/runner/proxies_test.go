package runner

import (
	"os"
	"sync"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/xds/ir"
	"github.com/capstanmesh/capstan/xds/server"
	"github.com/capstanmesh/capstan/xds/translate"
)

// recordingPublisher records which proxies were published or removed.
type recordingPublisher struct {
	mu        sync.Mutex
	published map[string]int
	removed   []string
}

func (p *recordingPublisher) SetProxyResources(id string, _ map[string][]types.Resource) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.published[id]++
	return true, nil
}

func (p *recordingPublisher) RemoveProxy(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.removed = append(p.removed, id)
}

func (p *recordingPublisher) take() (map[string]int, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pub, rem := p.published, p.removed
	p.published, p.removed = map[string]int{}, nil
	return pub, rem
}

// canaryInputs reads a translate golden input and adds a client pod that backs no service.
func canaryInputs(t *testing.T) *translate.Inputs {
	t.Helper()
	b, err := os.ReadFile("../translate/testdata/canary_split.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in := &translate.Inputs{}
	if err := yaml.UnmarshalStrict(b, in); err != nil {
		t.Fatal(err)
	}
	in.Pods = append(in.Pods, corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "client", Namespace: "bookinfo", Labels: map[string]string{"app": "client"},
			Annotations: map[string]string{meshv1alpha1.AnnotationStatus: "injected"}},
		Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}},
		Status: corev1.PodStatus{PodIP: "10.1.0.99"},
	})
	return in
}

func translated(t *testing.T, in *translate.Inputs) *ir.Mesh {
	t.Helper()
	res, err := translate.Translate(in)
	if err != nil {
		t.Fatal(err)
	}
	return res.Mesh
}

// Only proxies whose inputs changed are generated again; proxies that left are removed.
func TestOnlyChangedProxiesAreRegenerated(t *testing.T) {
	pub := &recordingPublisher{published: map[string]int{}}
	table := newProxyTable()
	in := canaryInputs(t)
	client := ir.SidecarNodeID("10.1.0.99", "client", "bookinfo")

	_ = table.update(translated(t, in), pub, logr.Discard())
	if got, _ := pub.take(); len(got) != 3 {
		t.Fatalf("first push published %v, want all 3 proxies", got)
	}

	_ = table.update(translated(t, in), pub, logr.Discard())
	if got, _ := pub.take(); len(got) != 0 {
		t.Fatalf("an unchanged push published %v, want nothing", got)
	}

	changed := in.DeepCopy()
	changed.Pods[len(changed.Pods)-1].Labels["tier"] = "frontend"
	_ = table.update(translated(t, changed), pub, logr.Discard())
	if got, _ := pub.take(); len(got) != 1 || got[client] != 1 {
		t.Fatalf("a change to the client pod published %v, want only %s", got, client)
	}

	gone := changed.DeepCopy()
	gone.Pods = gone.Pods[:len(gone.Pods)-1]
	_ = table.update(translated(t, gone), pub, logr.Discard())
	if got, removed := pub.take(); len(got) != 0 || len(removed) != 1 || removed[0] != client {
		t.Fatalf("removing the client pod published %v and removed %v, want only %s removed", got, removed, client)
	}
}

// A pod annotated capstan.dev/generator: grpc is a proxyless gRPC client: the
// runner generates its config with the gRPC generator and the real server
// accepts it (API listeners checked by the proxyless consistency check).
func TestProxylessGRPCClientIsPublished(t *testing.T) {
	in := canaryInputs(t)
	client := &in.Pods[len(in.Pods)-1]
	client.Annotations = map[string]string{meshv1alpha1.AnnotationGenerator: meshv1alpha1.GeneratorGRPC}
	srv := server.New(server.Options{})
	table := newProxyTable()

	_ = table.update(translated(t, in), srv, logr.Discard())

	id := ir.GRPCNodeID("10.1.0.99", "client", "bookinfo")
	st, ok := srv.ProxyStatus(id)
	if !ok || st.Published[resource.ListenerType] == "" || st.Published[resource.RouteType] == "" {
		t.Fatalf("proxy status of %s = %+v, %v; want listeners and routes published", id, st, ok)
	}
	if _, ok := srv.ProxyStatus(ir.SidecarNodeID("10.1.0.99", "client", "bookinfo")); ok {
		t.Errorf("the un-injected client also got a sidecar config")
	}
}
