package dataplane

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/test/envtest"
)

// MeshRoute fields through two real sidecars (issue #15, point 1): each
// subtest programs the route "server" and asserts what the apps observed.

// routeFixture is a namespace with the Service server (pods server-v1 and
// server-v2, subsets v1 and v2 of a DestinationPolicy) and a meshed client.
type routeFixture struct {
	ns             string
	svc            *corev1.Service
	v1, v2, client *pod
	route          *meshv1alpha1.MeshRoute
}

func newRouteFixture(t *testing.T) *routeFixture {
	t.Helper()
	f := &routeFixture{ns: meshNamespace(t)}
	f.svc = createService(t, f.ns, "server", "server", httpPort(80, appPort))
	f.v1, f.v2 = versionPod(t, f.ns, "v1"), versionPod(t, f.ns, "v2")
	setEndpoints(t, f.svc, f.v1, f.v2)
	dp := &meshv1alpha1.DestinationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "server", Namespace: f.ns},
		Spec: meshv1alpha1.DestinationPolicySpec{Host: "server", Subsets: []meshv1alpha1.Subset{
			{Name: "v1", Labels: map[string]string{"version": "v1"}}, {Name: "v2", Labels: map[string]string{"version": "v2"}},
		}},
	}
	if err := env.Client.Create(context.Background(), dp); err != nil {
		t.Fatalf("creating DestinationPolicy: %v", err)
	}
	f.client = startPod(t, podSpec{name: "client", namespace: f.ns})
	waitEndpoints(t, f.client, f.ns, "server", 2)
	return f
}

// versionPod is a meshed HTTP server pod server-<version> of the Service server.
func versionPod(t *testing.T, ns, version string) *pod {
	t.Helper()
	return startPod(t, podSpec{
		name: "server-" + version, namespace: ns, labels: map[string]string{"app": "server", "version": version},
		app:   &AppConfig{Mode: HTTPServer, Port: appPort},
		ports: []corev1.ContainerPort{{Name: "http", ContainerPort: appPort}},
	})
}

// markerHeader is set by the marker rule every route of these tests
// starts with: once the client sees its value, the sidecar has the route.
const markerHeader = "x-route-marker"

// setRules programs the route's rules after a marker rule (path
// /marker/<marker>, which sets markerHeader to marker), and waits until
// the client's sidecar applies them.
func (f *routeFixture) setRules(t *testing.T, marker string, rules ...meshv1alpha1.HTTPRule) {
	t.Helper()
	all := append([]meshv1alpha1.HTTPRule{{
		Name:    "marker",
		Match:   []meshv1alpha1.HTTPMatch{{Path: &meshv1alpha1.PathMatch{Type: meshv1alpha1.MatchExact, Value: "/marker/" + marker}}},
		Route:   []meshv1alpha1.Destination{{Host: "server", Subset: "v1"}},
		Headers: &meshv1alpha1.HeaderEdits{Request: &meshv1alpha1.HeaderOperations{Set: map[string]string{markerHeader: marker}}},
	}}, rules...)
	if f.route == nil {
		f.route = &meshv1alpha1.MeshRoute{
			ObjectMeta: metav1.ObjectMeta{Name: "server", Namespace: f.ns},
			Spec:       meshv1alpha1.MeshRouteSpec{Hosts: []string{"server"}, HTTP: all},
		}
		if err := env.Client.Create(context.Background(), f.route); err != nil {
			t.Fatalf("creating MeshRoute: %v", err)
		}
	} else {
		update(t, f.route, func() { f.route.Spec.HTTP = all })
	}
	envtest.Eventually(t, wait, func() error {
		res := f.call(t, AppConfig{URL: f.url("/marker/" + marker), Count: 1})
		if len(res) != 1 || res[0].Report == nil || res[0].Report.Headers[http.CanonicalHeaderKey(markerHeader)] == nil ||
			res[0].Report.Headers[http.CanonicalHeaderKey(markerHeader)][0] != marker {
			return fmt.Errorf("route %s not applied yet: %+v", marker, res)
		}
		return nil
	})
}

func (f *routeFixture) url(path string) string { return serviceURL(f.svc, path) }

// call runs an HTTP client in the client pod (Timeout 5s by default).
func (f *routeFixture) call(t *testing.T, cfg AppConfig) []CallResult {
	t.Helper()
	cfg.Mode = HTTPClient
	return calls(t, f.client.netns, cfg)
}

// caseRule is a rule for requests with the header x-case: name.
func caseRule(name string, rule meshv1alpha1.HTTPRule) meshv1alpha1.HTTPRule {
	rule.Name = name
	rule.Match = []meshv1alpha1.HTTPMatch{{Headers: []meshv1alpha1.HeaderMatch{{Name: "x-case", Value: name}}}}
	if rule.Route == nil && rule.Redirect == nil {
		rule.Route = []meshv1alpha1.Destination{{Host: "server", Subset: "v1"}}
	}
	return rule
}

// caseCall makes n calls with x-case: name to path.
func (f *routeFixture) caseCall(t *testing.T, name, path string, n int, cfg AppConfig) []CallResult {
	t.Helper()
	cfg.URL, cfg.Count = f.url(path), n
	cfg.Headers = map[string]string{"x-case": name}
	return f.call(t, cfg)
}

func subsetRoute(subset string) []meshv1alpha1.Destination {
	return []meshv1alpha1.Destination{{Host: "server", Subset: subset}}
}

func pathRule(name string, typ meshv1alpha1.MatchType, value, subset string) meshv1alpha1.HTTPRule {
	return meshv1alpha1.HTTPRule{Name: name, Match: []meshv1alpha1.HTTPMatch{{Path: &meshv1alpha1.PathMatch{Type: typ, Value: value}}}, Route: subsetRoute(subset)}
}

func headerRule(name string, h meshv1alpha1.HeaderMatch, subset string) meshv1alpha1.HTTPRule {
	return meshv1alpha1.HTTPRule{Name: name, Match: []meshv1alpha1.HTTPMatch{{Headers: []meshv1alpha1.HeaderMatch{h}}}, Route: subsetRoute(subset)}
}

// matchCase is one request of the matches subtest and the pod that must answer it.
type matchCase struct {
	what, path, method string
	headers            map[string]string
	want               string
}

// TestRouteFeatures: MeshRoute rule fields through real sidecars, each
// asserted by what the apps observed.
func TestRouteFeatures(t *testing.T) {
	needRoot(t)
	f := newRouteFixture(t)
	t.Run("matches", f.testMatches)
	t.Run("weights", f.testWeights)
	t.Run("retries", f.testRetries)
	t.Run("timeout", f.testTimeout)
	t.Run("fault", f.testFault)
	t.Run("headers", f.testHeaders)
}

// testMatches: path exact, prefix and regex; header exact, prefix, regex,
// and present inverted; query parameter; method — each sends its requests
// to v2, the rest go to v1; the first matching rule wins.
func (f *routeFixture) testMatches(t *testing.T) {
	f.setRules(t, "matches",
		pathRule("exact", meshv1alpha1.MatchExact, "/exact", "v2"),
		pathRule("first", meshv1alpha1.MatchPrefix, "/first", "v2"),
		pathRule("second", meshv1alpha1.MatchPrefix, "/first/second", "v1"),
		pathRule("regex", meshv1alpha1.MatchRegularExpression, "/re/[0-9]+", "v2"),
		headerRule("h-exact", meshv1alpha1.HeaderMatch{Name: "x-exact", Value: "yes"}, "v2"),
		headerRule("h-prefix", meshv1alpha1.HeaderMatch{Name: "x-prefix", Type: meshv1alpha1.MatchPrefix, Value: "ab"}, "v2"),
		headerRule("h-regex", meshv1alpha1.HeaderMatch{Name: "x-regex", Type: meshv1alpha1.MatchRegularExpression, Value: "c+d"}, "v2"),
		meshv1alpha1.HTTPRule{Name: "h-absent", Match: []meshv1alpha1.HTTPMatch{{
			Path:    &meshv1alpha1.PathMatch{Type: meshv1alpha1.MatchPrefix, Value: "/absent"},
			Headers: []meshv1alpha1.HeaderMatch{{Name: "x-present", Type: meshv1alpha1.MatchPresent, Invert: true}},
		}}, Route: subsetRoute("v2")},
		meshv1alpha1.HTTPRule{Name: "query", Match: []meshv1alpha1.HTTPMatch{{QueryParams: []meshv1alpha1.QueryParamMatch{{Name: "q", Value: "1"}}}}, Route: subsetRoute("v2")},
		meshv1alpha1.HTTPRule{Name: "method", Match: []meshv1alpha1.HTTPMatch{{Method: http.MethodDelete}}, Route: subsetRoute("v2")},
		meshv1alpha1.HTTPRule{Name: "default", Route: subsetRoute("v1")},
	)
	for _, c := range []matchCase{
		{"path exact", "/exact", "", nil, "server-v2"},
		{"path exact, longer", "/exact/more", "", nil, "server-v1"},
		{"first match wins", "/first/second", "", nil, "server-v2"},
		{"path regex", "/re/42", "", nil, "server-v2"},
		{"path regex, partial", "/re/42x", "", nil, "server-v1"},
		{"header exact", "/h", "", map[string]string{"x-exact": "yes"}, "server-v2"},
		{"header exact, other value", "/h", "", map[string]string{"x-exact": "yes!"}, "server-v1"},
		{"header prefix", "/h", "", map[string]string{"x-prefix": "abc"}, "server-v2"},
		{"header regex", "/h", "", map[string]string{"x-regex": "cccd"}, "server-v2"},
		{"header regex, partial", "/h", "", map[string]string{"x-regex": "cdx"}, "server-v1"},
		{"header absent (present, inverted)", "/absent", "", nil, "server-v2"},
		{"header present, inverted", "/absent", "", map[string]string{"x-present": "1"}, "server-v1"},
		{"query parameter", "/q?q=1", "", nil, "server-v2"},
		{"query parameter, other value", "/q?q=2", "", nil, "server-v1"},
		{"method", "/m", http.MethodDelete, nil, "server-v2"},
		{"other method", "/m", http.MethodPut, nil, "server-v1"},
	} {
		res := f.call(t, AppConfig{URL: f.url(c.path), Count: 1, Method: c.method, Headers: c.headers})
		if len(res) != 1 || res[0].Report == nil || res[0].Report.Pod != c.want {
			t.Errorf("%s (%s %s %v): %+v, want an answer from %s", c.what, c.method, c.path, c.headers, res, c.want)
		}
	}
}

// chiSquareCritical is the chi-square value with one degree of freedom
// exceeded with probability 0.0001: a split off by a few points over 2000
// requests still exceeds it many times over.
const chiSquareCritical = 15.137

// halfSigmas bounds a fair binomial's distance from half of n: it falls
// outside 4 standard deviations with a probability below 0.0001.
const halfSigmas = 4

// testWeights: 90/10 over 2000 requests, then 10/90 after an update: the
// answers by subset pass a chi-square test at p > 0.0001 each time.
func (f *routeFixture) testWeights(t *testing.T) {
	const n = 2000
	for i, w := range [][2]int32{{90, 10}, {10, 90}} {
		f.setRules(t, "weights-"+strconv.Itoa(i), meshv1alpha1.HTTPRule{Name: "split", Route: []meshv1alpha1.Destination{
			{Host: "server", Subset: "v1", Weight: ptr.To(w[0])}, {Host: "server", Subset: "v2", Weight: ptr.To(w[1])},
		}})
		byPod := map[string]int{}
		for _, r := range f.call(t, AppConfig{URL: f.url("/split"), Count: n}) {
			if r.Report != nil {
				byPod[r.Report.Pod]++
			}
		}
		if got := byPod["server-v1"] + byPod["server-v2"]; got != n {
			t.Errorf("weights %v: %d of %d requests answered by v1 or v2: %v", w, got, n, byPod)
		}
		chi := chiSquare([]int{byPod["server-v1"], byPod["server-v2"]}, []float64{float64(w[0]) / 100 * n, float64(w[1]) / 100 * n})
		if chi > chiSquareCritical {
			t.Errorf("weights %v: answers %v, chi-square %.2f > %.3f (p < 0.0001)", w, byPod, chi, chiSquareCritical)
		}
		t.Logf("weights %v over %d requests: %v, chi-square %.2f", w, n, byPod, chi)
	}
}

func chiSquare(observed []int, expected []float64) float64 {
	var sum float64
	for i, o := range observed {
		d := float64(o) - expected[i]
		sum += d * d / expected[i]
	}
	return sum
}

// testRetries: attempts and retryOn — an app answering 503 gets 1 +
// attempts requests per call with 5xx and with gateway-error, an app
// answering 500 only one with gateway-error (500 is not a gateway error);
// attempts 0 turns retries off; perTryTimeout — a request the app holds
// for 3s is tried 1 + attempts times, each cut after 1s, and the caller
// gets 504. (Each try must reach the app before it is cut to be counted:
// 1s leaves a loaded machine time for that.)
func (f *routeFixture) testRetries(t *testing.T) {
	retries := func(attempts int32, on ...meshv1alpha1.RetryOn) meshv1alpha1.HTTPRule {
		return meshv1alpha1.HTTPRule{Retries: &meshv1alpha1.Retries{Attempts: attempts, RetryOn: on}}
	}
	perTry := retries(2, "5xx")
	perTry.Retries.PerTryTimeout = &metav1.Duration{Duration: time.Second}
	f.setRules(t, "retries",
		caseRule("retry-5xx", retries(2, "5xx")),
		caseRule("retry-gateway", retries(3, "gateway-error")),
		caseRule("retry-off", retries(0, "5xx")),
		caseRule("per-try", perTry),
	)
	const n = 4
	for _, c := range []struct {
		name, path string
		status     int
		perCall    float64
	}{
		{"retry-5xx", StatusPathPrefix + "503", http.StatusServiceUnavailable, 3},
		{"retry-gateway", StatusPathPrefix + "503", http.StatusServiceUnavailable, 4},
		{"retry-gateway", StatusPathPrefix + "500", http.StatusInternalServerError, 1},
		{"retry-off", StatusPathPrefix + "503", http.StatusServiceUnavailable, 1},
		{"per-try", SleepPathPrefix + "3000", http.StatusGatewayTimeout, 3},
	} {
		before := inboundRequests(t, f.v1)
		for _, r := range f.caseCall(t, c.name, c.path, n, AppConfig{Timeout: 10 * time.Second}) {
			if r.Status != c.status {
				t.Errorf("%s %s: call %d answered %d, want %d: %+v", c.name, c.path, r.N, r.Status, c.status, r)
			}
		}
		if got := inboundRequests(t, f.v1) - before; got != c.perCall*n {
			t.Errorf("%s %s: the app got %v requests for %d calls, want %v each", c.name, c.path, got, n, c.perCall)
		}
	}
}

// testTimeout: a 1s timeout ends a request the app holds for 3s with the
// sidecar's 504 (the app got it once: 1s leaves a loaded machine time to
// get it there); a quick request is answered.
func (f *routeFixture) testTimeout(t *testing.T) {
	f.setRules(t, "timeout", caseRule("timeout", meshv1alpha1.HTTPRule{Timeout: &metav1.Duration{Duration: time.Second}}))
	before := inboundRequests(t, f.v1)
	const n = 3
	for _, r := range f.caseCall(t, "timeout", SleepPathPrefix+"3000", n, AppConfig{}) {
		if r.Status != http.StatusGatewayTimeout || r.Body != "upstream request timeout" {
			t.Errorf("held call %d: %+v, want the sidecar's 504 upstream request timeout", r.N, r)
		}
	}
	if got := inboundRequests(t, f.v1) - before; got != n {
		t.Errorf("the app got %v requests for %d calls, want one each", got, n)
	}
	for _, r := range f.caseCall(t, "timeout", SleepPathPrefix+"10", n, AppConfig{}) {
		if !r.OK {
			t.Errorf("quick call %d: %+v", r.N, r)
		}
	}
}

// testFault: abort at 100% answers 418 without reaching the app; abort at
// 50% over 200 calls aborts a binomial share (within 4 standard
// deviations of half) and the app gets exactly the others; a 3s delay at
// 100% holds all 100 concurrent calls past the callers' 2s timeout; at 50%
// about half (the others, answered at once, have 2s on a loaded machine).
func (f *routeFixture) testFault(t *testing.T) {
	abort := func(pct int32) meshv1alpha1.HTTPRule {
		return meshv1alpha1.HTTPRule{Fault: &meshv1alpha1.Fault{Abort: &meshv1alpha1.FaultAbort{HTTPStatus: http.StatusTeapot, Percent: pct}}}
	}
	delay := func(pct int32) meshv1alpha1.HTTPRule {
		return meshv1alpha1.HTTPRule{Fault: &meshv1alpha1.Fault{Delay: &meshv1alpha1.FaultDelay{FixedDelay: metav1.Duration{Duration: 3 * time.Second}, Percent: pct}}}
	}
	f.setRules(t, "fault", caseRule("abort-all", abort(100)), caseRule("abort-half", abort(50)), caseRule("delay-all", delay(100)), caseRule("delay-half", delay(50)))
	before := inboundRequests(t, f.v1)
	for _, r := range f.caseCall(t, "abort-all", "/abort", 5, AppConfig{}) {
		if r.Status != http.StatusTeapot || r.Report != nil {
			t.Errorf("abort-all call %d: %+v, want the sidecar's 418", r.N, r)
		}
	}
	if got := inboundRequests(t, f.v1) - before; got != 0 {
		t.Errorf("aborted calls reached the app %v times", got)
	}
	const n = 200
	before = inboundRequests(t, f.v1)
	var aborted int
	for _, r := range f.caseCall(t, "abort-half", "/abort", n, AppConfig{}) {
		if r.Status == http.StatusTeapot {
			aborted++
		}
	}
	checkHalf(t, "abort-half", aborted, n)
	if got := inboundRequests(t, f.v1) - before; got != float64(n-aborted) {
		t.Errorf("abort-half: the app got %v requests, want the %d not aborted", got, n-aborted)
	}
	f.testDelay(t)
}

func (f *routeFixture) testDelay(t *testing.T) {
	const n = 100
	for _, c := range []struct {
		name string
		all  bool
	}{{"delay-all", true}, {"delay-half", false}} {
		res := load(t, f.client, AppConfig{URL: f.url("/delay"), Concurrency: n, Timeout: 2 * time.Second, Headers: map[string]string{"x-case": c.name}})
		if c.all && (res.Errors != n || res.Statuses[http.StatusOK] != 0) {
			t.Errorf("%s: %+v, want every call held past its 2s timeout", c.name, res)
		}
		if !c.all {
			checkHalf(t, c.name, res.Errors, n)
			if res.Errors+res.Statuses[http.StatusOK] != n {
				t.Errorf("%s: %+v, want calls held or answered", c.name, res)
			}
		}
	}
}

// checkHalf fails t unless k of n is within halfSigmas standard deviations
// of n/2.
func checkHalf(t *testing.T, what string, k, n int) {
	t.Helper()
	if sd := math.Sqrt(float64(n) / 4); math.Abs(float64(k)-float64(n)/2) > halfSigmas*sd {
		t.Errorf("%s: %d of %d, want about half", what, k, n)
	}
	t.Logf("%s: %d of %d", what, k, n)
}

// testHeaders: request set (replacing the client's value), add (beside
// it) and remove, as the app saw them; response set, add and remove (of
// the app's own X-App-Pod), as the client saw them.
func (f *routeFixture) testHeaders(t *testing.T) {
	f.setRules(t, "headers", caseRule("headers", meshv1alpha1.HTTPRule{Headers: &meshv1alpha1.HeaderEdits{
		Request: &meshv1alpha1.HeaderOperations{
			Set: map[string]string{"x-set": "route"}, Add: map[string]string{"x-add": "route"}, Remove: []string{"x-remove"},
		},
		Response: &meshv1alpha1.HeaderOperations{
			Set: map[string]string{"x-resp-set": "route"}, Add: map[string]string{"x-resp-add": "route"}, Remove: []string{"x-app-pod"},
		},
	}}))
	cfg := AppConfig{Headers: map[string]string{"x-case": "headers", "x-set": "client", "x-add": "client", "x-remove": "client"}}
	cfg.URL, cfg.Count = f.url("/headers"), 1
	res := f.call(t, cfg)
	if len(res) != 1 || res[0].Report == nil {
		t.Fatalf("call: %+v", res)
	}
	seen, got := res[0].Report.Headers, res[0].RespHeaders
	want := map[string][]string{"X-Set": {"route"}, "X-Add": {"client", "route"}, "X-Remove": nil}
	for k, v := range want {
		if fmt.Sprint(seen[k]) != fmt.Sprint(v) {
			t.Errorf("the app saw %s %q, want %q", k, seen[k], v)
		}
	}
	if got.Get("X-Resp-Set") != "route" || got.Get("X-Resp-Add") != "route" || got.Get(AppPodHeader) != "" {
		t.Errorf("the client saw response headers %v, want x-resp-set and x-resp-add, no %s", got, AppPodHeader)
	}
}

// TestRouteRewriteRedirectMirror: rewrite (prefix, full URI, authority),
// redirect (code, URI, authority) and mirror (100% and 50%) through real
// sidecars, as the apps and the client saw them.
func TestRouteRewriteRedirectMirror(t *testing.T) {
	needRoot(t)
	f := newRouteFixture(t)
	t.Run("rewrite", f.testRewrite)
	t.Run("redirect", f.testRedirect)
	t.Run("mirror", f.testMirror)
}

// testRewrite: /old/x reaches the app as /new/x (prefix), any path as
// /full (URI), and with the authority rewritten.
func (f *routeFixture) testRewrite(t *testing.T) {
	prefix := caseRule("rewrite-prefix", meshv1alpha1.HTTPRule{Rewrite: &meshv1alpha1.Rewrite{Prefix: "/new"}})
	prefix.Match[0].Path = &meshv1alpha1.PathMatch{Type: meshv1alpha1.MatchPrefix, Value: "/old"}
	f.setRules(t, "rewrite", prefix,
		caseRule("rewrite-uri", meshv1alpha1.HTTPRule{Rewrite: &meshv1alpha1.Rewrite{URI: "/full", Authority: "rewritten.example"}}))
	for _, c := range []struct{ name, path, wantPath, wantHost string }{
		{"rewrite-prefix", "/old/x", "/new/x", f.svc.Name + "." + f.ns + ":80"},
		{"rewrite-uri", "/any/path", "/full", "rewritten.example"},
	} {
		res := f.caseCall(t, c.name, c.path, 1, AppConfig{})
		if len(res) != 1 || res[0].Report == nil || res[0].Report.Path != c.wantPath || res[0].Report.Host != c.wantHost {
			t.Errorf("%s %s: %+v, want the app to see %s%s", c.name, c.path, res, c.wantHost, c.wantPath)
		}
	}
}

// testRedirect: the client gets the redirect (307 to other.example/moved,
// and the default 301 for a URI alone); the app gets nothing.
func (f *routeFixture) testRedirect(t *testing.T) {
	f.setRules(t, "redirect",
		caseRule("redirect-307", meshv1alpha1.HTTPRule{Redirect: &meshv1alpha1.Redirect{URI: "/moved", Authority: "other.example", Code: http.StatusTemporaryRedirect}}),
		caseRule("redirect-default", meshv1alpha1.HTTPRule{Redirect: &meshv1alpha1.Redirect{URI: "/moved"}}))
	before := inboundRequests(t, f.v1) + inboundRequests(t, f.v2)
	for _, c := range []struct {
		name, location string
		code           int
	}{
		{"redirect-307", "http://other.example/moved", http.StatusTemporaryRedirect},
		{"redirect-default", "http://" + f.svc.Name + "." + f.ns + ":80/moved", http.StatusMovedPermanently},
	} {
		res := f.caseCall(t, c.name, "/here", 1, AppConfig{})
		if len(res) != 1 || res[0].Status != c.code || res[0].RespHeaders.Get("Location") != c.location {
			t.Errorf("%s: %+v, want %d to %s", c.name, res, c.code, c.location)
		}
	}
	if got := inboundRequests(t, f.v1) + inboundRequests(t, f.v2) - before; got != 0 {
		t.Errorf("redirected calls reached the apps %v times", got)
	}
}

// testMirror: with a mirror to v2 at 100%, every call is answered by v1
// alone and v2 gets a copy of each; at 50%, v2
// gets copies of about half.
func (f *routeFixture) testMirror(t *testing.T) {
	mirror := func(pct int32) meshv1alpha1.HTTPRule {
		return meshv1alpha1.HTTPRule{Mirror: &meshv1alpha1.Mirror{Host: "server", Subset: "v2", Percent: pct}}
	}
	f.setRules(t, "mirror", caseRule("mirror-all", mirror(100)), caseRule("mirror-half", mirror(50)))
	for _, c := range []struct {
		name string
		n    int
	}{{"mirror-all", 20}, {"mirror-half", 200}} {
		before := inboundRequests(t, f.v2)
		for _, r := range f.caseCall(t, c.name, "/mirror", c.n, AppConfig{}) {
			if r.Report == nil || r.Report.Pod != "server-v1" {
				t.Errorf("%s call %d: %+v, want v1's answer", c.name, r.N, r)
			}
		}
		envtest.Eventually(t, wait, func() error {
			got := int(inboundRequests(t, f.v2) - before)
			if c.name == "mirror-all" && got != c.n {
				return fmt.Errorf("%s: v2 got %d copies of %d calls", c.name, got, c.n)
			}
			if sd := math.Sqrt(float64(c.n) / 4); c.name == "mirror-half" && math.Abs(float64(got)-float64(c.n)/2) > halfSigmas*sd {
				return fmt.Errorf("%s: v2 got %d copies of %d calls, want about half", c.name, got, c.n)
			}
			return nil
		})
	}
}
