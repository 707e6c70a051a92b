package dataplane

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/test/envtest"
)

// grpcRetryOn are the retryOn values that name gRPC status codes, with
// their codes.
var grpcRetryOn = []struct {
	value meshv1alpha1.RetryOn
	code  codes.Code
}{
	{"cancelled", codes.Canceled},
	{"deadline-exceeded", codes.DeadlineExceeded},
	{"internal", codes.Internal},
	{"resource-exhausted", codes.ResourceExhausted},
	{"unavailable", codes.Unavailable},
}

// TestGRPCPolicyTraffic: a gRPC app (appProtocol grpc) behind two
// sidecars.
//   - retryOn with a gRPC status code: for each value, calls that the app
//     answers with that status are tried 1 + attempts (2) times — the app
//     gets three requests per call — and fail with the app's status; a
//     call answered with the status of the next value, which the rule
//     does not name, is tried once;
//   - a server-streaming call that lasts 6s with 2s of silence between its
//     messages, through a client sidecar whose connections to the service
//     close after 1s idle (DestinationPolicy idleTimeout) and a server
//     sidecar whose connections to the app close after 4s idle: every
//     message arrives in order and the stream ends cleanly, one request
//     for the app.
func TestGRPCPolicyTraffic(t *testing.T) {
	needRoot(t)
	ns := meshNamespace(t)
	create(t, &meshv1alpha1.DestinationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "greeter", Namespace: ns},
		Spec: meshv1alpha1.DestinationPolicySpec{Host: "greeter", TrafficPolicy: &meshv1alpha1.TrafficPolicy{ConnectionPool: &meshv1alpha1.ConnectionPool{
			HTTP: &meshv1alpha1.HTTPPool{IdleTimeout: &metav1.Duration{Duration: time.Second}},
		}}},
	})
	create(t, grpcRetryRoute(ns))
	server, svc := protocolServer(t, ns, "greeter", AppConfig{Mode: GRPCServer}, appProtocolPort("grpc", 9090, "grpc"))
	client := startPod(t, podSpec{name: "client", namespace: ns})
	target := svc.Name + "." + ns + ":9090"
	appGot := func() float64 {
		return metric(server.stats(t), "envoy_cluster_upstream_rq_total", `envoy_cluster_name="inbound|9090||"`)
	}
	call := func(value meshv1alpha1.RetryOn, code codes.Code, n int) []CallResult {
		return calls(t, client.netns, AppConfig{Mode: GRPCClient, Target: target, Count: n, GRPCStatus: int(code), Headers: map[string]string{"x-case": string(value)}, Timeout: 3 * time.Second})
	}
	// The route is in place once a call asking for UNAVAILABLE is retried.
	envtest.Eventually(t, wait, func() error {
		before := appGot()
		call("unavailable", codes.Unavailable, 1)
		if got := appGot() - before; got != 3 {
			return fmt.Errorf("a call answered UNAVAILABLE reached the app %v times", got)
		}
		return nil
	})
	t.Run("retry-on", func(t *testing.T) {
		const n = 2
		for i, v := range grpcRetryOn {
			value, other := v.value, grpcRetryOn[(i+1)%len(grpcRetryOn)].code
			for _, c := range []struct {
				code    codes.Code
				perCall float64
			}{{v.code, 3}, {other, 1}} {
				before := appGot()
				for _, r := range call(value, c.code, n) {
					if r.OK || codes.Code(r.GRPCCode) != c.code { //nolint:gosec // a small status code
						t.Errorf("retryOn %s, app answering %s: call %d got %+v", value, c.code, r.N, r)
					}
				}
				if got := appGot() - before; got != c.perCall*n {
					t.Errorf("retryOn %s, app answering %s: the app got %v requests for %d calls, want %v each", value, c.code, got, n, c.perCall)
				}
			}
		}
	})
	t.Run("long-stream", func(t *testing.T) {
		before := appGot()
		const n = 3
		res := calls(t, client.netns, AppConfig{Mode: GRPCStream, Target: target, Count: n, Interval: 2 * time.Second, Timeout: time.Minute})
		if len(res) != n+1 || !res[n].OK || res[n].Body != "end" {
			t.Fatalf("stream: %+v, want %d messages and a clean end", res, n)
		}
		for i, r := range res[:n] {
			if !r.OK || r.Pod != "greeter" || r.Body != strconv.Itoa(i+1) {
				t.Errorf("message %d: %+v, want greeter's message %d", i+1, r, i+1)
			}
		}
		if got := appGot() - before; got != 1 {
			t.Errorf("the app got %v requests for one stream", got)
		}
	})
}

// grpcRetryRoute is the MeshRoute of greeter: for each gRPC retryOn value,
// calls with x-case: <value> get two retries on that condition alone.
func grpcRetryRoute(ns string) *meshv1alpha1.MeshRoute {
	to := []meshv1alpha1.Destination{{Host: "greeter"}}
	route := &meshv1alpha1.MeshRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "greeter", Namespace: ns},
		Spec:       meshv1alpha1.MeshRouteSpec{Hosts: []string{"greeter"}},
	}
	for _, v := range grpcRetryOn {
		route.Spec.HTTP = append(route.Spec.HTTP, meshv1alpha1.HTTPRule{
			Name: string(v.value), Route: to,
			Match:   []meshv1alpha1.HTTPMatch{{Headers: []meshv1alpha1.HeaderMatch{{Name: "x-case", Value: string(v.value)}}}},
			Retries: &meshv1alpha1.Retries{Attempts: 2, RetryOn: []meshv1alpha1.RetryOn{v.value}},
		})
	}
	route.Spec.HTTP = append(route.Spec.HTTP, meshv1alpha1.HTTPRule{Name: "default", Route: to})
	return route
}
