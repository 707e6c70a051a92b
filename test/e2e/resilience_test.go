package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

func routeTo(rules ...meshv1alpha1.HTTPRule) *meshv1alpha1.MeshRoute {
	return &meshv1alpha1.MeshRoute{
		ObjectMeta: metav1.ObjectMeta{Name: service},
		Spec:       meshv1alpha1.MeshRouteSpec{Hosts: []string{service}, HTTP: rules},
	}
}

func toEcho() []meshv1alpha1.Destination { return []meshv1alpha1.Destination{{Host: service}} }

func whenHeader(name, value string) []meshv1alpha1.HTTPMatch {
	return []meshv1alpha1.HTTPMatch{{Headers: []meshv1alpha1.HeaderMatch{{Name: name, Type: meshv1alpha1.MatchExact, Value: value}}}}
}

// Retries: a backend failing every other call with UNAVAILABLE, and
// attempts: 3 on unavailable → every client call succeeds, and the backend
// saw the retries.
func TestRetries(t *testing.T) {
	m := startMesh(t)
	b := m.addBackend(t, "echo-0", "v1")
	b.setHandler(func(_ context.Context, n int64) error {
		if n%2 == 1 {
			return status.Error(codes.Unavailable, "flaky")
		}
		return nil
	})
	mr := routeTo(meshv1alpha1.HTTPRule{Route: toEcho(), Retries: &meshv1alpha1.Retries{
		Attempts: 3, RetryOn: []meshv1alpha1.RetryOn{"unavailable"},
	}})
	m.create(t, mr)
	routeProgrammed(t, mr)
	c := m.dial(t)

	const n = 100
	if got := tally(c, n); got["v1"] != n {
		t.Fatalf("answers %v: want all %d calls to succeed through retries", got, n)
	}
	if calls := b.calls.Load(); calls != 2*n {
		t.Errorf("backend saw %d calls, want %d (each call failed once and was retried once)", calls, 2*n)
	}
}

// Timeout and fault injection, each on its own rule: the route timeout ends
// a call the backend holds; a delay longer than the caller's deadline means
// the call never reaches the backend, a shorter one delays it; an abort with
// HTTP 503 answers UNAVAILABLE without calling the backend.
func TestTimeoutAndFault(t *testing.T) {
	m := startMesh(t)
	b := m.addBackend(t, "echo-0", "v1")
	b.setHandler(func(ctx context.Context, _ int64) error {
		if md, _ := metadata.FromIncomingContext(ctx); len(md.Get("x-hold")) > 0 {
			<-ctx.Done() // held until the caller gives up
			return ctx.Err()
		}
		return nil
	})
	mr := routeTo(
		meshv1alpha1.HTTPRule{Name: "timeout", Match: whenHeader("x-test", "timeout"), Route: toEcho(),
			Timeout: &metav1.Duration{Duration: 200 * time.Millisecond}},
		meshv1alpha1.HTTPRule{Name: "delay", Match: whenHeader("x-test", "delay"), Route: toEcho(),
			Fault: &meshv1alpha1.Fault{Delay: &meshv1alpha1.FaultDelay{FixedDelay: metav1.Duration{Duration: time.Second}, Percent: 100}}},
		meshv1alpha1.HTTPRule{Name: "abort", Match: whenHeader("x-test", "abort"), Route: toEcho(),
			Fault: &meshv1alpha1.Fault{Abort: &meshv1alpha1.FaultAbort{HTTPStatus: 503, Percent: 100}}},
		meshv1alpha1.HTTPRule{Name: "rest", Route: toEcho()},
	)
	m.create(t, mr)
	routeProgrammed(t, mr)
	c := m.dial(t)
	if _, err := call(c, 10*time.Second); err != nil {
		t.Fatalf("plain call: %v", err)
	}

	before := b.calls.Load()
	_, err := call(c, time.Minute, "x-test", "timeout", "x-hold", "1")
	if status.Code(err) != codes.DeadlineExceeded || b.calls.Load() != before+1 {
		t.Errorf("held call on the timeout rule (caller's deadline 1m): %v, backend calls +%d; want DeadlineExceeded from the route's 200ms timeout after reaching the backend",
			err, b.calls.Load()-before)
	}

	before = b.calls.Load()
	_, err = call(c, 300*time.Millisecond, "x-test", "delay")
	if status.Code(err) != codes.DeadlineExceeded || b.calls.Load() != before {
		t.Errorf("call with a 300ms deadline on the 1s delay rule: %v, backend calls +%d; want DeadlineExceeded before reaching the backend",
			err, b.calls.Load()-before)
	}
	if v, err := call(c, time.Minute, "x-test", "delay"); err != nil || v != "v1" {
		t.Errorf("call with a 1m deadline on the 1s delay rule: %q, %v; want an answer after the delay", v, err)
	}

	before = b.calls.Load()
	got := tally(c, 20, "x-test", "abort")
	if got[codes.Unavailable.String()] != 20 || b.calls.Load() != before {
		t.Errorf("abort rule: %v, backend calls +%d; want 20 × Unavailable (HTTP 503) and no backend call", got, b.calls.Load()-before)
	}
}

// Circuit breaking: http2MaxRequests: 2 becomes max_requests; with two calls
// held by the backend, further calls are shed with UNAVAILABLE at once and
// never reach it.
func TestCircuitBreaking(t *testing.T) {
	m := startMesh(t)
	b := m.addBackend(t, "echo-0", "v1")
	release := make(chan struct{})
	b.setHandler(func(ctx context.Context, _ int64) error {
		if md, _ := metadata.FromIncomingContext(ctx); len(md.Get("x-hold")) > 0 {
			<-release
		}
		return nil
	})
	m.policy(t, &meshv1alpha1.TrafficPolicy{ConnectionPool: &meshv1alpha1.ConnectionPool{
		TCP:  &meshv1alpha1.TCPPool{MaxConnections: 5},
		HTTP: &meshv1alpha1.HTTPPool{HTTP2MaxRequests: 2},
	}})
	dp := policyProgrammed(t, m)
	want := "connectionPool.tcp.maxConnections is not supported by proxyless gRPC clients and is not sent to them"
	if c := meta.FindStatusCondition(dp.Status.Conditions, meshv1alpha1.ConditionProgrammed); !strings.Contains(c.Message, want) {
		t.Errorf("policy Programmed message %q does not say %q", c.Message, want)
	}
	c := m.dial(t)
	if _, err := call(c, 10*time.Second); err != nil {
		t.Fatalf("plain call: %v", err)
	}

	var held sync.WaitGroup
	heldErrs := make(chan error, 2)
	for range 2 {
		held.Go(func() {
			_, err := call(c, time.Minute, "x-hold", "1")
			heldErrs <- err
		})
	}
	envtestEventually(t, func() error {
		if n := b.inFlight.Load(); n != 2 {
			return fmt.Errorf("backend holds %d calls, want 2", n)
		}
		return nil
	})
	before := b.calls.Load()
	got := tally(c, 10)
	close(release)
	held.Wait()
	close(heldErrs)

	if got[codes.Unavailable.String()] != 10 || b.calls.Load() != before {
		t.Errorf("with 2 calls in flight and max_requests 2: %v, backend calls +%d; want all 10 shed as Unavailable", got, b.calls.Load()-before)
	}
	for err := range heldErrs {
		if err != nil {
			t.Errorf("a held call failed: %v", err)
		}
	}
	if p := b.peak.Load(); p > 2 {
		t.Errorf("backend saw %d calls at once, want at most 2", p)
	}
}

// Outlier detection by failure percentage (seed failure 4): with three of
// four backends failing and maxEjectionPercent 50, the client ejects two of
// them — never more — and keeps sending to the healthy one and one failing.
func TestOutlierDetectionKeepsHalfThePool(t *testing.T) {
	m := startMesh(t)
	healthy := m.addBackend(t, "echo-ok", "ok")
	var failing []*backend
	for i := range 3 {
		f := m.addBackend(t, fmt.Sprintf("echo-bad-%d", i), fmt.Sprintf("bad-%d", i))
		f.setHandler(func(context.Context, int64) error { return status.Error(codes.Internal, "broken") })
		failing = append(failing, f)
	}
	m.policy(t, &meshv1alpha1.TrafficPolicy{OutlierDetection: &meshv1alpha1.OutlierDetection{
		Consecutive5xxErrors: ptr.To[int32](0), // not supported by gRPC clients; 0 keeps the status free of that warning
		Interval:             &metav1.Duration{Duration: 500 * time.Millisecond},
		BaseEjectionTime:     &metav1.Duration{Duration: 5 * time.Minute},
		MaxEjectionPercent:   ptr.To[int32](50),
		FailurePercentage: &meshv1alpha1.FailurePercentageEjection{
			Threshold: ptr.To[int32](50), MinimumHosts: ptr.To[int32](4), RequestVolume: ptr.To[int32](5),
		},
	}})
	dp := policyProgrammed(t, m)
	if c := meta.FindStatusCondition(dp.Status.Conditions, meshv1alpha1.ConditionProgrammed); strings.Contains(c.Message, "left out") {
		t.Errorf("policy status mentions left-out parts: %s", c.Message)
	}
	c := m.dial(t)

	// Send traffic until the ejections show: batches that reach only two backends.
	var reached map[string]int
	err := pollUntil(wait, func() error {
		reached = answeredBy(c, 40, healthy, failing)
		if len(reached) != 2 {
			return fmt.Errorf("a batch of 40 calls reached %v, want two backends once two are ejected", reached)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Over several more intervals, the cap holds: two backends keep getting traffic.
	deadline := time.Now().Add(4 * 500 * time.Millisecond)
	for time.Now().Before(deadline) {
		reached = answeredBy(c, 40, healthy, failing)
		if len(reached) != 2 || reached["ok"] == 0 {
			t.Fatalf("a batch of 40 calls reached %v; want the healthy backend and one failing one (at most 50%% ejected)", reached)
		}
	}
}

// answeredBy makes n calls and counts, per backend version, the calls that
// reached it (failed or not).
func answeredBy(c testgrpc.TestServiceClient, n int, healthy *backend, failing []*backend) map[string]int {
	all := append([]*backend{healthy}, failing...)
	before := make([]int64, len(all))
	for i, b := range all {
		before[i] = b.calls.Load()
	}
	tally(c, n)
	out := map[string]int{}
	for i, b := range all {
		if d := b.calls.Load() - before[i]; d > 0 {
			out[b.version] = int(d)
		}
	}
	return out
}
