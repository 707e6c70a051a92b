package dataplane

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/test/envtest"
	"github.com/capstanmesh/capstan/xds/generate"
)

// scopedPort is the server's Service port and container port: a call to a
// pod's IP on it names the same port as a call to the Service.
const scopedPort = 8080

// versionedServer starts a meshed HTTP server pod labelled app=server and
// version=<version>, listening on scopedPort.
func versionedServer(t *testing.T, ns, version string) *pod {
	t.Helper()
	return startPod(t, podSpec{
		name: "server-" + version, namespace: ns, labels: map[string]string{"app": "server", "version": version},
		app:   &AppConfig{Mode: HTTPServer, Port: scopedPort},
		ports: []corev1.ContainerPort{{Name: "http", ContainerPort: scopedPort}},
	})
}

// routeToSubset creates a DestinationPolicy with subsets v1 and v2 of
// server in ns and a MeshRoute sending every request to subset.
func routeToSubset(t *testing.T, ns, subset string) {
	t.Helper()
	dp := &meshv1alpha1.DestinationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "server", Namespace: ns},
		Spec: meshv1alpha1.DestinationPolicySpec{Host: "server", Subsets: []meshv1alpha1.Subset{
			{Name: "v1", Labels: map[string]string{"version": "v1"}},
			{Name: "v2", Labels: map[string]string{"version": "v2"}},
		}},
	}
	mr := &meshv1alpha1.MeshRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "server", Namespace: ns},
		Spec: meshv1alpha1.MeshRouteSpec{Hosts: []string{"server"}, HTTP: []meshv1alpha1.HTTPRule{{
			Route: []meshv1alpha1.Destination{{Host: "server", Subset: subset}},
		}}},
	}
	if err := env.Client.Create(context.Background(), dp); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(context.Background(), mr); err != nil {
		t.Fatal(err)
	}
}

// awaitSubsetRoute calls url from client until the call is answered by
// server-<subset> through the client's cluster of that subset, so the
// route of routeToSubset is in place: an answer from server-<subset>
// alone proves nothing, the Service's own cluster picks it half the time.
func awaitSubsetRoute(t *testing.T, client *pod, url, serverNS, subset string) {
	t.Helper()
	counted := map[string]string{"destination_service_namespace": serverNS, "destination_service_name": "server", "destination_subset": subset}
	envtest.Eventually(t, wait, func() error {
		res := callsFrom(t, client, url, 1)
		if len(res) != 1 || !res[0].OK || res[0].Report == nil || res[0].Report.Pod != "server-"+subset {
			return fmt.Errorf("call from %s: %+v, want an answer from server-%s", client.obj.Name, res, subset)
		}
		if got := sample(client.stats(t), "envoy_cluster_upstream_rq_total", counted); got == 0 {
			return fmt.Errorf("the call did not go through %s's cluster of subset %s (no upstream_rq_total with %v)", client.obj.Name, subset, counted)
		}
		return nil
	})
}

// TestScopedSidecars: with scoping on (the default), a client in another
// namespace that declares nothing gets no config for the server's Service
// (no cluster for it), yet its call to a server pod on the Service's port
// is answered, through its sidecar's passthrough cluster; a client that
// declares server.<ns> in capstan.dev/dependencies gets mesh routing: the
// MeshRoute sending everything to subset v2 applies to its calls.
func TestScopedSidecars(t *testing.T) {
	needRoot(t)
	serverNS, clientNS := meshNamespace(t), meshNamespace(t)
	svc := createService(t, serverNS, "server", "server", httpPort(scopedPort, scopedPort))
	v1, v2 := versionedServer(t, serverNS, "v1"), versionedServer(t, serverNS, "v2")
	setEndpoints(t, svc, v1, v2)
	routeToSubset(t, serverNS, "v2")
	declared := startPod(t, podSpec{name: "declared", namespace: clientNS,
		annotations: map[string]string{meshv1alpha1.AnnotationDependencies: "server." + serverNS}})
	undeclared := startPod(t, podSpec{name: "undeclared", namespace: clientNS})

	// The declared client gets the route: every call reaches v2.
	url := serviceURL(svc, "/scoped")
	awaitSubsetRoute(t, declared, url, serverNS, "v2")
	const n = 10
	allOK(t, "declared client through the route", callsFrom(t, declared, url, n), n, "server-v2")

	// The undeclared client holds no cluster of the server's Service...
	cluster := generate.StatName("outbound|" + strconv.Itoa(scopedPort) + "||server." + serverNS + ".svc.cluster.local")
	acked(t, undeclared)
	if got := metric(undeclared.stats(t), "envoy_cluster_upstream_cx_total", `envoy_cluster_name="`+cluster+`"`); got != -1 {
		t.Errorf("the undeclared client's sidecar has the cluster %s (upstream_cx_total %v); scoping should leave it out", cluster, got)
	}
	if got := metric(declared.stats(t), "envoy_cluster_upstream_cx_total", `envoy_cluster_name="`+cluster+`"`); got < 0 {
		t.Errorf("the declared client's sidecar has no cluster %s", cluster)
	}
	// ...yet reaches a server pod, through the passthrough cluster, without the route.
	passthrough := func() float64 {
		return metric(undeclared.stats(t), "envoy_cluster_upstream_cx_total", `envoy_cluster_name="PassthroughCluster"`)
	}
	before := passthrough()
	podURL := "http://" + v1.obj.Status.PodIP + ":" + strconv.Itoa(scopedPort) + "/passthrough"
	waitCall(t, undeclared, podURL)
	allOK(t, "undeclared client through passthrough", callsFrom(t, undeclared, podURL, n), n, "server-v1")
	if after := passthrough(); after < max(before, 0)+n {
		t.Errorf("PassthroughCluster connections %v → %v over %d calls, want at least %d more", before, after, n+1, n)
	}
}
