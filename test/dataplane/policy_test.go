package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/test/envtest"
)

// The DestinationPolicy and MeshRoute fields the other scenarios leave
// (issue #15, point 1), on one pair of pods: retry limits, LEAST_REQUEST
// and RANDOM, failure-percentage and gateway-error ejection.

// burst is how many requests the retry-limit subtests send at once.
const burst = 40

// policyFixture is the pods server-0 and server-1 (app=server) and a
// meshed client, with one Service in front of both pods per policy: each
// Service's DestinationPolicy and MeshRoute are set before the client
// starts, so no subtest waits for a sidecar to update a cluster (an
// updated cluster warms until its endpoints come again).
type policyFixture struct {
	ns     string
	pods   []*pod
	client *pod
	svcs   map[string]*corev1.Service
	// plain, resetter, refuser and h2refuser are pods without a sidecar:
	// the HTTP app, the HTTP app (which resets /reset/resetter), nothing,
	// and the H2RefuseServer.
	plain, resetter, refuser, h2refuser *pod
}

// policyService is one Service of the fixture: its DestinationPolicy's
// traffic policy, its MeshRoute, its endpoints (server-0 and server-1
// unless set) and what its cluster in the client's sidecar shows once
// programmed.
type policyService struct {
	policy    *meshv1alpha1.TrafficPolicy
	route     func(ns, host string) *meshv1alpha1.MeshRoute
	endpoints func(*policyFixture) []*pod
	cluster   string
	// port is the Service's port, httpPort(80, appPort) unless set; a
	// Service with its own port selects app=<its name>, not the server
	// pods (whose inbound port would then carry two protocols).
	port *corev1.ServicePort
}

// withRetries is the retry MeshRoute with budget (retryRoute).
func withRetries(budget *meshv1alpha1.RetryBudget) func(ns, host string) *meshv1alpha1.MeshRoute {
	return func(ns, host string) *meshv1alpha1.MeshRoute { return retryRoute(ns, host, budget) }
}

// withCondition is the MeshRoute retrying on one condition (conditionRoute).
func withCondition(on meshv1alpha1.RetryOn) func(ns, host string) *meshv1alpha1.MeshRoute {
	return func(ns, host string) *meshv1alpha1.MeshRoute { return conditionRoute(ns, host, on) }
}

// appIdle is what the cluster to endpoints without a sidecar carries:
// the sidecar closes idle connections to applications after 4s.
const appIdle = `"idle_timeout":"4s"`

// TestPolicyTraffic runs the subtests on the pods server-0 and server-1,
// one Service each.
func TestPolicyTraffic(t *testing.T) {
	needRoot(t)
	f := newPolicyFixture(t, map[string]policyService{
		"budget-5":  {route: withRetries(&meshv1alpha1.RetryBudget{Percent: 1, MinRetryConcurrency: 5}), cluster: `"min_retry_concurrency":5`},
		"budget-50": {route: withRetries(&meshv1alpha1.RetryBudget{Percent: 50, MinRetryConcurrency: 1}), cluster: `"budget_percent":{"value":50}`},
		"max-retries": {route: withRetries(nil), cluster: `"max_retries":5}`,
			policy: &meshv1alpha1.TrafficPolicy{ConnectionPool: &meshv1alpha1.ConnectionPool{HTTP: &meshv1alpha1.HTTPPool{MaxRetries: 5}}}},
		"least-request": {cluster: `"lb_policy":"LEAST_REQUEST"`,
			policy: &meshv1alpha1.TrafficPolicy{LoadBalancer: &meshv1alpha1.LoadBalancer{Simple: meshv1alpha1.LBLeastRequest}}},
		"random": {cluster: `"lb_policy":"RANDOM"`,
			policy: &meshv1alpha1.TrafficPolicy{LoadBalancer: &meshv1alpha1.LoadBalancer{Simple: meshv1alpha1.LBRandom}}},
		"failure-percentage": {cluster: `"failure_percentage_threshold":50`, policy: outlier(meshv1alpha1.OutlierDetection{
			Interval:          &metav1.Duration{Duration: time.Second},
			FailurePercentage: &meshv1alpha1.FailurePercentageEjection{Threshold: ptr.To[int32](50), MinimumHosts: ptr.To[int32](2), RequestVolume: ptr.To[int32](5)},
		})},
		"gateway-errors": {cluster: `"consecutive_gateway_failure":3`, policy: outlier(meshv1alpha1.OutlierDetection{
			ConsecutiveGatewayErrors: ptr.To[int32](3), Interval: &metav1.Duration{Duration: time.Second},
		})},
		"edge-reset": {route: withCondition("reset"), cluster: appIdle,
			endpoints: func(f *policyFixture) []*pod { return []*pod{f.plain, f.resetter} }},
		"edge-refuse": {route: withCondition("connect-failure"), cluster: appIdle,
			endpoints: func(f *policyFixture) []*pod { return []*pod{f.plain, f.refuser} }},
		"edge-refused-stream": {route: withCondition("refused-stream"), cluster: `"http2_protocol_options"`,
			port:      &corev1.ServicePort{Name: "web", Port: 80, TargetPort: intstr.FromInt32(appPort), AppProtocol: ptr.To("h2c")},
			endpoints: func(f *policyFixture) []*pod { return []*pod{f.h2refuser} }},
	})
	t.Run("retry-budget", f.testRetryBudget)
	t.Run("max-retries", f.testMaxRetries)
	t.Run("retriable-4xx", f.testRetriable4xx)
	t.Run("least-request", f.testLeastRequest)
	t.Run("random", f.testRandom)
	t.Run("failure-percentage", f.testFailurePercentage)
	t.Run("gateway-errors", f.testGatewayErrors)
	t.Run("connect-timeout", f.testConnectTimeout)
	t.Run("retry-on-connection", f.testRetryOnConnection)
}

func newPolicyFixture(t *testing.T, services map[string]policyService) *policyFixture {
	t.Helper()
	f := &policyFixture{ns: meshNamespace(t), svcs: map[string]*corev1.Service{}}
	for name, s := range services {
		port, selector := httpPort(80, appPort), "server"
		if s.port != nil {
			port, selector = *s.port, name
		}
		f.svcs[name] = createService(t, f.ns, name, selector, port)
		if s.policy != nil {
			create(t, &meshv1alpha1.DestinationPolicy{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns},
				Spec:       meshv1alpha1.DestinationPolicySpec{Host: name, TrafficPolicy: s.policy},
			})
		}
		if s.route != nil {
			create(t, s.route(f.ns, name))
		}
	}
	for i := range 2 {
		f.pods = append(f.pods, httpServerPod(t, f.ns, "server-"+strconv.Itoa(i)))
	}
	app := func(name string) podSpec {
		return podSpec{name: name, namespace: f.ns, noInject: true,
			app: &AppConfig{Mode: HTTPServer, Port: appPort}, ports: []corev1.ContainerPort{{Name: "http", ContainerPort: appPort}}}
	}
	f.plain, f.resetter = startPod(t, app("plain")), startPod(t, app("resetter"))
	f.refuser = startPod(t, podSpec{name: "refuser", namespace: f.ns, noInject: true})
	f.h2refuser = startPod(t, podSpec{name: "h2refuser", namespace: f.ns, noInject: true,
		app: &AppConfig{Mode: H2RefuseServer, Port: appPort}, ports: []corev1.ContainerPort{{Name: "web", ContainerPort: appPort}}})
	for name, svc := range f.svcs {
		if eps := services[name].endpoints; eps != nil {
			setEndpoints(t, svc, eps(f)...)
		} else {
			setEndpoints(t, svc, f.pods...)
		}
	}
	f.client = startPod(t, podSpec{name: "client", namespace: f.ns})
	for name, s := range services {
		waitClusterHas(t, f.client, "outbound|80||"+name+"."+f.ns+".svc.cluster.local", s.cluster)
		if s.route != nil {
			f.waitRoute(t, name)
		}
	}
	return f
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

// retryRoute is the MeshRoute of host: x-case: retry gets one retry on
// 5xx with a per-try timeout of 1s and budget, x-case: 4xx two retries on
// retriable-4xx, the rest no retries of their own; every rule sets the
// response header x-rule to the host's name.
func retryRoute(ns, host string, budget *meshv1alpha1.RetryBudget) *meshv1alpha1.MeshRoute {
	mark := &meshv1alpha1.HeaderEdits{Response: &meshv1alpha1.HeaderOperations{Set: map[string]string{"x-rule": host}}}
	to := []meshv1alpha1.Destination{{Host: host}}
	rule := func(name string, r *meshv1alpha1.Retries) meshv1alpha1.HTTPRule {
		return meshv1alpha1.HTTPRule{
			Name: name, Route: to, Headers: mark, Retries: r,
			Match: []meshv1alpha1.HTTPMatch{{Headers: []meshv1alpha1.HeaderMatch{{Name: "x-case", Value: name}}}},
		}
	}
	return &meshv1alpha1.MeshRoute{
		ObjectMeta: metav1.ObjectMeta{Name: host, Namespace: ns},
		Spec: meshv1alpha1.MeshRouteSpec{Hosts: []string{host}, HTTP: []meshv1alpha1.HTTPRule{
			rule("retry", &meshv1alpha1.Retries{Attempts: 1, RetryOn: []meshv1alpha1.RetryOn{"5xx"}, PerTryTimeout: &metav1.Duration{Duration: time.Second}, Budget: budget}),
			rule("4xx", &meshv1alpha1.Retries{Attempts: 2, RetryOn: []meshv1alpha1.RetryOn{"retriable-4xx"}}),
			{Name: "default", Route: to, Headers: mark},
		}},
	}
}

// waitRoute polls until the client's sidecar answers a call to the
// Service with its route's x-rule header.
func (f *policyFixture) waitRoute(t *testing.T, name string) {
	t.Helper()
	envtest.Eventually(t, wait, func() error {
		res := calls(t, f.client.netns, AppConfig{Mode: HTTPClient, URL: f.url(name, "/ready"), Count: 1, Timeout: 3 * time.Second})
		if len(res) != 1 || !res[0].OK || res[0].RespHeaders.Get("X-Rule") != name {
			return fmt.Errorf("route %s not applied yet: %+v", name, res)
		}
		return nil
	})
}

func (f *policyFixture) url(svc, path string) string { return serviceURL(f.svcs[svc], path) }

// stat is a counter of the client's outbound cluster to svc.
func (f *policyFixture) stat(t *testing.T, svc, name string) float64 {
	t.Helper()
	return clusterStat(f.client.stats(t), f.ns, svc, name)
}

// retryBurst sends burst requests at once to svc that the apps hold for
// 20s, on the retry rule: each try is cut after 1s (504), and retried
// once if the cluster's retry limit allows. It returns the retries the
// client's sidecar made and refused (upstream_rq_retry,
// upstream_rq_retry_overflow) and the requests the apps got.
func (f *policyFixture) retryBurst(t *testing.T, svc string) (retried, refused, got float64) {
	t.Helper()
	retried0, refused0, got0 := f.stat(t, svc, "upstream_rq_retry"), f.stat(t, svc, "upstream_rq_retry_overflow"), f.appRequests(t)
	res := load(t, f.client, AppConfig{URL: f.url(svc, SleepPathPrefix+"20000"), Concurrency: burst, Headers: map[string]string{"x-case": "retry"}, Timeout: 30 * time.Second})
	if res.Statuses[http.StatusGatewayTimeout] != burst {
		t.Errorf("%d requests held by the apps: %+v, want every one cut by the per-try timeout (504)", burst, res)
	}
	return f.stat(t, svc, "upstream_rq_retry") - retried0, f.stat(t, svc, "upstream_rq_retry_overflow") - refused0, f.appRequests(t) - got0
}

// appRequests is how many requests the server pods' sidecars sent to their apps.
func (f *policyFixture) appRequests(t *testing.T) float64 {
	t.Helper()
	var n float64
	for _, p := range f.pods {
		n += inboundRequests(t, p)
	}
	return n
}

// checkRetries: of a burst, between least and most were retried, the rest
// refused, and the apps got every first try and every retry.
func checkRetries(t *testing.T, what string, retried, refused, got float64, least, most int) {
	t.Helper()
	if retried < float64(least) || retried > float64(most) || retried+refused != burst {
		t.Errorf("%s: of %d tries cut at once, %v retried and %v refused (retry overflow), want %d–%d retried and the rest refused", what, burst, retried, refused, least, most)
	}
	if got != burst+retried {
		t.Errorf("%s: the apps got %v requests, want the %d first tries and the %v retries", what, got, burst, retried)
	}
	t.Logf("%s: %d tries cut at once: %v retried, %v refused; the apps got %v", what, burst, retried, refused, got)
}

// testRetryBudget: 40 tries cut at once by the per-try timeout. With a
// budget of 1% of the active requests (0.4) and minRetryConcurrency 5,
// five are retried (Envoy's circuit breakers may pass a limit by one per
// worker, two here) and the others refused; with 50% and 1, about half
// of the requests active as the first tries end and the retries start:
// about 20.
func (f *policyFixture) testRetryBudget(t *testing.T) {
	retried, refused, got := f.retryBurst(t, "budget-5")
	checkRetries(t, "budget 1%, at least 5", retried, refused, got, 5, 5+envoyWorkers)
	retried, refused, got = f.retryBurst(t, "budget-50")
	checkRetries(t, "budget 50%, at least 1", retried, refused, got, 10, 30)
}

// testMaxRetries: without a budget on the route, the DestinationPolicy's
// maxRetries 5 caps the retries of the same burst at five (plus one per
// worker).
func (f *policyFixture) testMaxRetries(t *testing.T) {
	retried, refused, got := f.retryBurst(t, "max-retries")
	checkRetries(t, "maxRetries 5", retried, refused, got, 5, 5+envoyWorkers)
}

// testRetriable4xx: retryOn retriable-4xx with two retries: an app
// answering 409 gets three requests per call, one answering 404 one.
func (f *policyFixture) testRetriable4xx(t *testing.T) {
	const n = 4
	for _, c := range []struct {
		status  int
		perCall float64
	}{{http.StatusConflict, 3}, {http.StatusNotFound, 1}} {
		before := f.appRequests(t)
		res := calls(t, f.client.netns, AppConfig{Mode: HTTPClient, URL: f.url("max-retries", StatusPathPrefix+strconv.Itoa(c.status)), Count: n, Headers: map[string]string{"x-case": "4xx"}})
		for _, r := range res {
			if r.Status != c.status || r.Report == nil {
				t.Errorf("retriable-4xx, app answering %d: call %d got %+v", c.status, r.N, r)
			}
		}
		if got := f.appRequests(t) - before; got != c.perCall*n {
			t.Errorf("retriable-4xx, app answering %d: the apps got %v requests for %d calls, want %v each", c.status, got, n, c.perCall)
		}
	}
}

// testLeastRequest: LEAST_REQUEST with one request held on one pod: of
// 200 calls made meanwhile, the idle pod answers at least 125. Envoy's
// least request compares two endpoints picked at random (with
// replacement), so with two endpoints it picks the idle one with
// probability ¾ (150 expected, 125 is 4.1 standard deviations below);
// round robin would give it 100, random 100 ± 7 (125 is 3.5 standard
// deviations above).
func (f *policyFixture) testLeastRequest(t *testing.T) {
	busy := f.holdOne(t, "least-request")
	const n, least = 200, 125
	got := f.answers(t, "least-request", "/lr", n)
	if idle := n - got[busy]; got[""] != 0 || idle < least {
		t.Errorf("with a request held on %s: answers by pod %v, want at least %d of %d from the idle pod", busy, got, least, n)
	}
	t.Logf("least request, one request held on %s: %d calls answered by %v", busy, n, got)
}

// holdOne starts a request to svc that the apps hold for a minute (ended
// with the test) and returns the pod that holds it, as its sidecar's
// active inbound requests show.
func (f *policyFixture) holdOne(t *testing.T, svc string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd, err := AppCommand(ctx, f.client.netns, AppConfig{Mode: HTTPClient, URL: f.url(svc, SleepPathPrefix+"60000"), Count: 1, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	var busy string
	envtest.Eventually(t, wait, func() error {
		for _, p := range f.pods {
			if metric(p.stats(t), "envoy_cluster_upstream_rq_active", `envoy_cluster_name="inbound|8080||"`) == 1 {
				busy = p.obj.Name
				return nil
			}
		}
		return errors.New("no pod holds the request yet")
	})
	return busy
}

// testRandom: RANDOM spreads 60 calls over both pods (each gets at least
// 10; a binomial(60, ½) share below that has probability 3·10⁻⁸).
func (f *policyFixture) testRandom(t *testing.T) {
	got := f.answers(t, "random", "/random", 60)
	for _, p := range f.pods {
		if got[p.obj.Name] < 10 {
			t.Errorf("random: answers by pod %v, want both pods to answer a share of 60", got)
		}
	}
	t.Logf("random: 60 calls answered by %v", got)
}

// outlier is outlier detection with the consecutive-5xx check off, one of
// the two pods ejectable and no panic threshold.
func outlier(od meshv1alpha1.OutlierDetection) *meshv1alpha1.TrafficPolicy {
	od.Consecutive5xxErrors = ptr.To[int32](0)
	od.BaseEjectionTime = &metav1.Duration{Duration: 5 * time.Minute}
	od.MaxEjectionPercent, od.MinHealthPercent = ptr.To[int32](50), ptr.To[int32](0)
	return &meshv1alpha1.TrafficPolicy{OutlierDetection: &od}
}

// testFailurePercentage: server-0 answers every call 500; with
// failurePercentage threshold 50 over at least 5 requests on both pods and
// an interval of 1s, a sweep ejects server-0 (ejections_enforced_failure_percentage)
// and the calls after it are all answered by server-1.
func (f *policyFixture) testFailurePercentage(t *testing.T) {
	const svc = "failure-percentage"
	path := FailPathPrefix + "server-0/500"
	envtest.Eventually(t, wait, func() error {
		if got := f.answers(t, svc, path, 20); got["server-0"] != 0 {
			return fmt.Errorf("server-0 still answers: %v", got)
		}
		return nil
	})
	if got := f.answers(t, svc, path, 20); got["server-1"] != 20 {
		t.Errorf("after the ejection: answers by pod %v, want all 20 from server-1", got)
	}
	if got := f.stat(t, svc, "outlier_detection_ejections_enforced_failure_percentage"); got != 1 {
		t.Errorf("%v failure-percentage ejections enforced, want 1", got)
	}
}

// testGatewayErrors: consecutiveGatewayErrors 3. server-0 answering 500
// is never ejected (a 500 is no gateway error): it answers its share of 20
// calls. Answering 502, 503 and 504 in turn, it is ejected after its
// third: it answers each code once (a call or two more may reach it while
// the ejection reaches the workers), then never again, and the cluster
// counts one consecutive-gateway-failure ejection.
func (f *policyFixture) testGatewayErrors(t *testing.T) {
	const svc = "gateway-errors"
	if got := f.answers(t, svc, FailPathPrefix+"server-0/500", 20); got["server-0"] < 5 {
		t.Errorf("server-0 answering 500: answers by pod %v, want server-0 to keep its share", got)
	}
	if got := f.stat(t, svc, "outlier_detection_ejections_enforced_total"); got != 0 {
		t.Errorf("%v ejections after 500s, want none", got)
	}
	res := calls(t, f.client.netns, AppConfig{Mode: HTTPClient, URL: f.url(svc, FailPathPrefix+"server-0/502,503,504"), Count: 30})
	codes := map[int]int{}
	for _, r := range res {
		if r.Report != nil && r.Report.Pod == "server-0" {
			codes[r.Status]++
		} else if !r.OK {
			t.Errorf("call %d: %+v", r.N, r)
		}
	}
	if codes[502] < 1 || codes[503] < 1 || codes[504] < 1 || codes[502]+codes[503]+codes[504] > 5 {
		t.Errorf("server-0 answering 502, 503, 504 in turn: it answered %v, want each once (a call or two more at most) before its ejection", codes)
	}
	for _, r := range res[len(res)-10:] {
		if !r.OK || r.Report == nil || r.Report.Pod != "server-1" {
			t.Errorf("call %d after the ejection: %+v, want server-1's answer", r.N, r)
		}
	}
	if got := f.stat(t, svc, "outlier_detection_ejections_enforced_consecutive_gateway_failure"); got != 1 {
		t.Errorf("%v consecutive-gateway-failure ejections enforced, want 1", got)
	}
}

// answers makes n calls to svc's path and counts them by the pod that
// answered (any status); calls no app answered count under "".
func (f *policyFixture) answers(t *testing.T, svc, path string, n int) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range calls(t, f.client.netns, AppConfig{Mode: HTTPClient, URL: f.url(svc, path), Count: n}) {
		if r.Report != nil {
			out[r.Report.Pod]++
		} else {
			out[""]++
		}
	}
	return out
}

// testConnectTimeout: the Service blackhole's one endpoint is a pod
// without a sidecar that drops connection attempts to its port (no
// answer, no refusal). With connectTimeout 250ms each call gets the
// client's sidecar's 503 "connection timeout" well within the caller's 5s
// (Capstan's default of 10s would leave the caller without an answer):
// the first try and the two default retries of connection failures each
// counted as upstream_cx_connect_timeout.
func (f *policyFixture) testConnectTimeout(t *testing.T) {
	hole := startPod(t, podSpec{name: "blackhole", namespace: f.ns, noInject: true})
	out, err := hole.netns.Command(context.Background(), "iptables", "-w", "-A", "INPUT", "-p", "tcp", "--dport", strconv.Itoa(appPort), "-j", "DROP").CombinedOutput()
	if err != nil {
		t.Fatalf("dropping connections to %s: %v\n%s", hole.obj.Name, err, out)
	}
	create(t, &meshv1alpha1.DestinationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "blackhole", Namespace: f.ns},
		Spec: meshv1alpha1.DestinationPolicySpec{Host: "blackhole", TrafficPolicy: &meshv1alpha1.TrafficPolicy{ConnectionPool: &meshv1alpha1.ConnectionPool{
			TCP: &meshv1alpha1.TCPPool{ConnectTimeout: &metav1.Duration{Duration: 250 * time.Millisecond}},
		}}},
	})
	f.svcs["blackhole"] = createService(t, f.ns, "blackhole", "blackhole", httpPort(80, appPort))
	setEndpoints(t, f.svcs["blackhole"], hole)
	waitClusterHas(t, f.client, "outbound|80||blackhole."+f.ns+".svc.cluster.local", `"connect_timeout":"0.250s"`)
	// The new cluster may have warmed with no endpoint (the Service
	// reached the sidecar before its EndpointSlice): the calls would get
	// "no healthy upstream" and no connection timeout.
	waitEndpoints(t, f.client, f.ns, "blackhole", 1)
	before := f.stat(t, "blackhole", "upstream_cx_connect_timeout")
	const n = 2
	for _, r := range calls(t, f.client.netns, AppConfig{Mode: HTTPClient, URL: f.url("blackhole", "/hole"), Count: n}) {
		if r.Status != http.StatusServiceUnavailable || !strings.Contains(r.Body, "connection timeout") {
			t.Errorf("call %d: %+v, want the sidecar's 503 after connection timeouts", r.N, r)
		}
	}
	if got := f.stat(t, "blackhole", "upstream_cx_connect_timeout") - before; got != 3*n {
		t.Errorf("%v connection timeouts for %d calls, want 3 each (the default retries of connection failures)", got, n)
	}
}

// testRetryOnConnection: retryOn reset and connect-failure, each alone,
// where the client's sidecar meets them: on its connections to endpoints
// without a sidecar. The Service edge-reset has the pods plain and
// resetter, both without a sidecar, resetter's app closing the
// connection without answering (path /reset/resetter); edge-refuse has
// plain and a pod where nothing listens. With two retries on the
// condition, every call is answered by plain and the client's sidecar
// counts retries; with two retries on retriable-4xx only, the calls that
// meet the reset or the refusal fail with the sidecar's 503.
func (f *policyFixture) testRetryOnConnection(t *testing.T) {
	f.checkCondition(t, "edge-reset", "reset", ResetPathPrefix+"resetter")
	f.checkCondition(t, "edge-refuse", "connect-failure", "/refused")
	f.checkRefusedStream(t)
}

// checkRefusedStream: the Service edge-refused-stream (appProtocol h2c,
// so the client's sidecar speaks HTTP/2 upstream) has one endpoint
// without a sidecar, an H2RefuseServer: it answers every third stream it
// gets and refuses the others with REFUSED_STREAM. With two retries on
// refused-stream, every call is answered, each on the third stream after
// the previous call's (two refused, one answered), and the client's
// sidecar retries twice per call; with two retries on retriable-4xx
// only, the next three calls meet one stream each, in order: two get the
// sidecar's 503 (the refusal, not retried) and the third is answered on
// the stream after them.
func (f *policyFixture) checkRefusedStream(t *testing.T) {
	const svc, n = "edge-refused-stream", 4
	retries := f.stat(t, svc, "upstream_rq_retry")
	res := calls(t, f.client.netns, AppConfig{Mode: HTTPClient, URL: f.url(svc, "/refused-stream"), Count: n, Headers: map[string]string{"x-case": "on"}})
	var last int
	for i, r := range res {
		if !r.OK || r.Report == nil || r.Report.Pod != "h2refuser" {
			t.Fatalf("retryOn refused-stream: call %d got %+v, want the answer of h2refuser", r.N, r)
		}
		if i > 0 && r.Report.Stream != last+RefuseEvery {
			t.Errorf("retryOn refused-stream: call %d answered on stream %d, the previous on %d: want two refused streams between", r.N, r.Report.Stream, last)
		}
		last = r.Report.Stream
	}
	if got := f.stat(t, svc, "upstream_rq_retry") - retries; got < 2*(n-1) || got > 2*n {
		t.Errorf("retryOn refused-stream: the client's sidecar retried %v times for %d calls, want two per call", got, n)
	}
	res = calls(t, f.client.netns, AppConfig{Mode: HTTPClient, URL: f.url(svc, "/refused-stream"), Count: 3, Headers: map[string]string{"x-case": "off"}})
	if len(res) != 3 {
		t.Fatalf("retryOn retriable-4xx (refused stream): %d calls, want 3: %+v", len(res), res)
	}
	for _, r := range res[:2] {
		if r.Status != http.StatusServiceUnavailable || r.Report != nil || !strings.Contains(r.Body, "refused") {
			t.Errorf("retryOn retriable-4xx: call %d to a refused stream got %+v, want the sidecar's 503 naming the refusal", r.N, r)
		}
	}
	if r := res[2]; !r.OK || r.Report == nil || r.Report.Stream != last+RefuseEvery {
		t.Errorf("retryOn retriable-4xx: call 3 got %+v, want the answer on stream %d (one stream per call)", r, last+RefuseEvery)
	}
	t.Logf("%s: %d calls retried on refused-stream answered on streams up to %d; without it 2 of 3 got 503: %q", svc, n, last, res[0].Body)
}

// checkCondition: calls to path with x-case: on are all answered by plain
// after the client's sidecar retried; with x-case: off some fail with
// its 503.
func (f *policyFixture) checkCondition(t *testing.T, svc string, on meshv1alpha1.RetryOn, path string) {
	t.Helper()
	const n = 6
	before := f.stat(t, svc, "upstream_rq_retry")
	for _, r := range calls(t, f.client.netns, AppConfig{Mode: HTTPClient, URL: f.url(svc, path), Count: n, Headers: map[string]string{"x-case": "on"}}) {
		if !r.OK || r.Report == nil || r.Report.Pod != "plain" {
			t.Errorf("retryOn %s: call %d got %+v, want the answer of plain", on, r.N, r)
		}
	}
	if got := f.stat(t, svc, "upstream_rq_retry") - before; got < 1 {
		t.Errorf("retryOn %s: the client's sidecar retried %v times", on, got)
	}
	var failed int
	for _, r := range calls(t, f.client.netns, AppConfig{Mode: HTTPClient, URL: f.url(svc, path), Count: n, Headers: map[string]string{"x-case": "off"}}) {
		if r.Status == http.StatusServiceUnavailable && r.Report == nil {
			failed++
		} else if !r.OK {
			t.Errorf("retryOn retriable-4xx (%s): call %d got %+v", svc, r.N, r)
		}
	}
	if failed == 0 {
		t.Errorf("retryOn retriable-4xx (%s): no call of %d met the %s", svc, n, on)
	}
	t.Logf("%s: %d calls retried on %s all answered by plain; without it %d of %d failed", svc, n, on, failed, n)
}

// conditionRoute is the MeshRoute of host: x-case: on gets two retries on
// the condition on, x-case: off two on retriable-4xx only; every rule sets
// the response header x-rule to host.
func conditionRoute(ns, host string, on meshv1alpha1.RetryOn) *meshv1alpha1.MeshRoute {
	mark := &meshv1alpha1.HeaderEdits{Response: &meshv1alpha1.HeaderOperations{Set: map[string]string{"x-rule": host}}}
	to := []meshv1alpha1.Destination{{Host: host}}
	rule := func(name string, cond meshv1alpha1.RetryOn) meshv1alpha1.HTTPRule {
		return meshv1alpha1.HTTPRule{
			Name: name, Route: to, Headers: mark, Retries: &meshv1alpha1.Retries{Attempts: 2, RetryOn: []meshv1alpha1.RetryOn{cond}},
			Match: []meshv1alpha1.HTTPMatch{{Headers: []meshv1alpha1.HeaderMatch{{Name: "x-case", Value: name}}}},
		}
	}
	return &meshv1alpha1.MeshRoute{
		ObjectMeta: metav1.ObjectMeta{Name: host, Namespace: ns},
		Spec: meshv1alpha1.MeshRouteSpec{Hosts: []string{host}, HTTP: []meshv1alpha1.HTTPRule{
			rule("on", on), rule("off", "retriable-4xx"), {Name: "default", Route: to, Headers: mark},
		}},
	}
}
