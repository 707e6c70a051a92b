package dataplane

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/test/envtest"
)

// DestinationPolicy load balancing and outlier detection through real
// sidecars (issue #15, point 1).

// poolFixture is the Service server with n meshed pods server-0…, the
// ones in failing answering every request with 500, a DestinationPolicy
// server (no traffic policy yet) and a meshed client.
type poolFixture struct {
	ns     string
	svc    *corev1.Service
	pods   []*pod
	client *pod
	policy *meshv1alpha1.DestinationPolicy
}

func newPoolFixture(t *testing.T, n int, failing map[int]bool) *poolFixture {
	t.Helper()
	f := &poolFixture{ns: meshNamespace(t)}
	f.svc = createService(t, f.ns, "server", "server", httpPort(80, appPort))
	for i := range n {
		opts := ServerOptions{}
		if failing[i] {
			opts.FailStatus = http.StatusInternalServerError
		}
		f.pods = append(f.pods, startPod(t, podSpec{
			name: "server-" + strconv.Itoa(i), namespace: f.ns, labels: map[string]string{"app": "server"},
			app:   &AppConfig{Mode: HTTPServer, Port: appPort, ServerOptions: opts},
			ports: []corev1.ContainerPort{{Name: "http", ContainerPort: appPort}},
		}))
	}
	setEndpoints(t, f.svc, f.pods...)
	f.client = startPod(t, podSpec{name: "client", namespace: f.ns})
	waitEndpoints(t, f.client, f.ns, "server", n)
	f.policy = &meshv1alpha1.DestinationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "server", Namespace: f.ns},
		Spec:       meshv1alpha1.DestinationPolicySpec{Host: "server"},
	}
	if err := env.Client.Create(context.Background(), f.policy); err != nil {
		t.Fatalf("creating DestinationPolicy: %v", err)
	}
	return f
}

func (f *poolFixture) setPolicy(t *testing.T, tp *meshv1alpha1.TrafficPolicy) {
	t.Helper()
	update(t, f.policy, func() { f.policy.Spec.TrafficPolicy = tp })
}

// byPod makes n calls (with headers), each on a new connection (from a new
// source port), and counts the answers by pod; a failed call counts under "".
func (f *poolFixture) byPod(t *testing.T, n int, headers map[string]string) (map[string]int, []CallResult) {
	t.Helper()
	res := calls(t, f.client.netns, AppConfig{Mode: HTTPClient, URL: serviceURL(f.svc, "/lb"), Count: n, Headers: headers, NewConnections: true})
	out := map[string]int{}
	for _, r := range res {
		if r.Report != nil && r.OK {
			out[r.Report.Pod]++
		} else {
			out[""]++
		}
	}
	return out, res
}

// TestLoadBalancing: without a policy (round robin) 30 calls spread over
// the three pods; consistent hash by header sends each of 12 users' calls
// to one pod, the users together to more than one; by cookie, the
// sidecar sets the cookie and calls carrying it stick to one pod; by
// source IP, every call of the one client goes to one pod, from any source
// port.
func TestLoadBalancing(t *testing.T) {
	needRoot(t)
	f := newPoolFixture(t, 3, nil)
	t.Run("round-robin", func(t *testing.T) {
		got, _ := f.byPod(t, 30, nil)
		for _, p := range f.pods {
			if got[p.obj.Name] < 5 {
				t.Errorf("round robin: %v, want every pod to answer a share of 30 calls", got)
			}
		}
	})
	t.Run("hash-header", func(t *testing.T) {
		f.setPolicy(t, &meshv1alpha1.TrafficPolicy{LoadBalancer: &meshv1alpha1.LoadBalancer{ConsistentHash: &meshv1alpha1.ConsistentHash{HTTPHeaderName: "x-user"}}})
		envtest.Eventually(t, wait, func() error { return f.sticks(t, map[string]string{"x-user": "probe"}) })
		owners := map[string]bool{}
		for u := range 12 {
			got, _ := f.byPod(t, 8, map[string]string{"x-user": "user-" + strconv.Itoa(u)})
			if len(got) != 1 || got[""] != 0 {
				t.Errorf("user %d: %v, want one pod for all 8 calls", u, got)
			}
			for p := range got {
				owners[p] = true
			}
		}
		if len(owners) < 2 {
			t.Errorf("12 users all went to %v", owners)
		}
	})
	t.Run("hash-cookie", func(t *testing.T) {
		f.setPolicy(t, &meshv1alpha1.TrafficPolicy{LoadBalancer: &meshv1alpha1.LoadBalancer{ConsistentHash: &meshv1alpha1.ConsistentHash{
			HTTPCookie: &meshv1alpha1.HTTPCookie{Name: "sticky", TTL: &metav1.Duration{Duration: time.Hour}},
		}}})
		var cookie string
		envtest.Eventually(t, wait, func() error {
			_, res := f.byPod(t, 1, nil)
			if len(res) != 1 {
				return fmt.Errorf("call: %+v", res)
			}
			cookie, _, _ = strings.Cut(res[0].RespHeaders.Get("Set-Cookie"), ";")
			if !strings.HasPrefix(cookie, "sticky=") {
				return fmt.Errorf("no sticky cookie set: %v", res[0].RespHeaders)
			}
			return nil
		})
		if err := f.sticks(t, map[string]string{"Cookie": cookie}); err != nil {
			t.Error(err)
		}
	})
	t.Run("hash-source-ip", func(t *testing.T) {
		f.setPolicy(t, &meshv1alpha1.TrafficPolicy{LoadBalancer: &meshv1alpha1.LoadBalancer{ConsistentHash: &meshv1alpha1.ConsistentHash{UseSourceIP: true}}})
		envtest.Eventually(t, wait, func() error { return f.sticks(t, nil) })
	})
}

// sticks: 10 calls with headers are all answered by one pod, and the
// sidecar sets no cookie unless asked to (a cookie policy's cookie).
func (f *poolFixture) sticks(t *testing.T, headers map[string]string) error {
	t.Helper()
	got, res := f.byPod(t, 10, headers)
	if len(got) != 1 || got[""] != 0 {
		return fmt.Errorf("calls with %v answered by %v, want one pod", headers, got)
	}
	for _, r := range res {
		if c := r.RespHeaders.Get("Set-Cookie"); c != "" && headers["Cookie"] == "" {
			return fmt.Errorf("call %d: the sidecar set cookie %q", r.N, c)
		}
	}
	return nil
}

// TestOutlierDetection: of three pods one answers every request with 500.
// With consecutive5xxErrors 2 it is ejected after its first failures: of
// 60 calls (500s are not retried by default) at most a few fail, the last
// 30 all succeed, and the client's cluster counts the ejection.
func TestOutlierDetection(t *testing.T) {
	needRoot(t)
	f := newPoolFixture(t, 3, map[int]bool{0: true})
	f.setPolicy(t, &meshv1alpha1.TrafficPolicy{OutlierDetection: &meshv1alpha1.OutlierDetection{
		Consecutive5xxErrors: ptr.To[int32](2), BaseEjectionTime: &metav1.Duration{Duration: 5 * time.Minute},
		Interval: &metav1.Duration{Duration: time.Second},
	}})
	f.waitOutlier(t, 2)
	got, res := f.byPod(t, 60, nil)
	if got[""] > 6 {
		t.Errorf("60 calls: %v, want at most a few failures before the ejection", got)
	}
	for _, r := range res[30:] {
		if !r.OK {
			t.Errorf("call %d after the ejection failed: %+v", r.N, r)
		}
	}
	if ej := clusterStat(f.client.stats(t), f.ns, "server", "outlier_detection_ejections_enforced_consecutive_5xx"); ej < 1 {
		t.Errorf("the client's cluster enforced %v consecutive-5xx ejections, want ≥ 1", ej)
	}
	t.Logf("60 calls with one of three pods failing: %v", got)
}

// TestOutlierEjectionLimits: three of four pods answer every request with
// 500, consecutive5xxErrors 1 (seed failure 4, with Envoy's own
// algorithm).
//   - maxEjectionPercent 50: exactly two pods are ejected (the
//     ejections_active gauge), so the calls after them reach exactly two
//     pods, the healthy one and a failing one;
//   - maxEjectionPercent 100 with minHealthPercent 50: all three failing
//     pods are ejected, one healthy pod of four is below the panic
//     threshold, and the sidecar sends to every pod again (lb_healthy_panic):
//     no call gets Envoy's "no healthy upstream", every one reaches an app.
func TestOutlierEjectionLimits(t *testing.T) {
	needRoot(t)
	failing := map[int]bool{0: true, 1: true, 2: true}
	od := func(maxEject, minHealth int32) *meshv1alpha1.TrafficPolicy {
		return &meshv1alpha1.TrafficPolicy{OutlierDetection: &meshv1alpha1.OutlierDetection{
			Consecutive5xxErrors: ptr.To[int32](1), BaseEjectionTime: &metav1.Duration{Duration: 5 * time.Minute},
			MaxEjectionPercent: ptr.To(maxEject), MinHealthPercent: ptr.To(minHealth),
		}}
	}
	t.Run("max-ejection", func(t *testing.T) {
		f := newPoolFixture(t, 4, failing)
		f.setPolicy(t, od(50, 50))
		f.waitOutlier(t, 1)
		f.responders(t, 40)
		got := f.responders(t, 60)
		if len(got) != 2 || got["server-3"] == 0 {
			t.Errorf("after the ejections: answers by pod %v, want the healthy server-3 and one failing pod", got)
		}
		if active := clusterStat(f.client.stats(t), f.ns, "server", "outlier_detection_ejections_active"); active != 2 {
			t.Errorf("%v endpoints ejected, want 2 (50%% of 4)", active)
		}
	})
	t.Run("panic", func(t *testing.T) {
		f := newPoolFixture(t, 4, failing)
		f.setPolicy(t, od(100, 50))
		f.waitOutlier(t, 1)
		f.responders(t, 40)
		got := f.responders(t, 60)
		if got[""] != 0 || len(got) < 3 {
			t.Errorf("in panic: answers by pod %v, want every call answered by an app, by several pods", got)
		}
		stats := f.client.stats(t)
		if active := clusterStat(stats, f.ns, "server", "outlier_detection_ejections_active"); active != 3 {
			t.Errorf("%v endpoints ejected, want the 3 failing", active)
		}
		if p := clusterStat(stats, f.ns, "server", "lb_healthy_panic"); p < 1 {
			t.Errorf("lb_healthy_panic %v, want the panic threshold to apply", p)
		}
	})
}

// waitOutlier polls the client's config until its cluster to the
// fixture's server has outlier detection with consecutive_5xx n (other
// tests' namespaces have clusters of the same shape).
func (f *poolFixture) waitOutlier(t *testing.T, n int) {
	t.Helper()
	cluster := "outbound|80||server." + f.ns + ".svc.cluster.local"
	envtest.Eventually(t, wait, func() error {
		dump := f.client.admin(t, "/config_dump?resource=dynamic_active_clusters&mask=cluster.name,cluster.outlier_detection").Body
		var parsed struct {
			Configs []struct {
				Cluster struct {
					Name             string `json:"name"`
					OutlierDetection struct {
						Consecutive5xx int `json:"consecutive_5xx"`
					} `json:"outlier_detection"`
				} `json:"cluster"`
			} `json:"configs"`
		}
		if err := json.Unmarshal([]byte(dump), &parsed); err != nil {
			return err
		}
		for _, c := range parsed.Configs {
			if c.Cluster.Name == cluster && c.Cluster.OutlierDetection.Consecutive5xx == n {
				return nil
			}
		}
		return fmt.Errorf("cluster %s without consecutive_5xx %d yet: %s", cluster, n, dump)
	})
}

// responders makes n calls and counts the answers by the pod whose app
// answered (failing or not); calls no app answered count under "".
func (f *poolFixture) responders(t *testing.T, n int) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range calls(t, f.client.netns, AppConfig{Mode: HTTPClient, URL: serviceURL(f.svc, "/od"), Count: n}) {
		if r.Report != nil {
			out[r.Report.Pod]++
		} else {
			out[""]++
		}
	}
	return out
}
