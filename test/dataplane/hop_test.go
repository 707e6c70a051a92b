package dataplane

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/internal/netpod"
)

// The cost of a hop (issue #15, docs/benchmarks.md "The cost of a hop"):
// the latency a client sidecar and a server sidecar with mTLS add to an
// HTTP/1.1 call, against the same apps calling each other directly in the
// same run, measured open loop at fixed rates (internal/loadgen); and the
// sidecars' CPU and memory. `make bench-hop` runs TestHopBenchmark;
// TestHopLoad is its short check in `make test`.

// hopBodySize is the size of each request's and each answer's body.
const hopBodySize = 1024

// hopFixture is the two paths of the benchmark, in one namespace under
// STRICT mTLS: client → client sidecar → server sidecar → server, and
// direct-client → direct-server (two pods without sidecars), the same apps.
type hopFixture struct {
	client, server           *pod
	directClient             *pod
	meshURL, directURL       string
	clientEnvoy, serverEnvoy int
}

func newHopFixture(t *testing.T) *hopFixture {
	t.Helper()
	ns := meshNamespace(t)
	peerAuth(t, ns, "default", meshv1alpha1.PeerMTLSStrict, nil)
	server, svc := echoServer(t, ns, podSpec{})
	client := startPod(t, podSpec{name: "client", namespace: ns})
	directServer := startPod(t, podSpec{
		name: "direct-server", namespace: ns, noInject: true,
		app:   &AppConfig{Mode: HTTPServer, Port: appPort},
		ports: []corev1.ContainerPort{{Name: "http", ContainerPort: appPort}},
	})
	directClient := startPod(t, podSpec{name: "direct-client", namespace: ns, noInject: true})
	path := netpod.BytesPathPrefix + strconv.Itoa(hopBodySize)
	f := &hopFixture{
		client: client, server: server, directClient: directClient,
		meshURL:     serviceURL(svc, path),
		directURL:   "http://" + directServer.netns.IP.String() + ":" + strconv.Itoa(appPort) + path,
		clientEnvoy: client.envoy.Pid(), serverEnvoy: server.envoy.Pid(),
	}
	waitCall(t, client, f.meshURL)
	waitServing(t, directClient.netns, f.directURL)
	return f
}

// rateLoad runs an http-rate client in from against url.
func rateLoad(t *testing.T, from *pod, url string, o netpod.RateOptions) netpod.RateResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), o.Warmup+o.Duration+2*time.Minute)
	defer cancel()
	cmd, err := AppCommand(ctx, from.netns, AppConfig{Mode: netpod.HTTPRate, URL: url, Rate: &o, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("rate client in %s: %v\n%s", from.netns.Name, err, out)
	}
	var res netpod.RateResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("rate client output %q: %v", out, err)
	}
	return res
}

// procUsage is what /proc says of a process: its CPU time (all threads,
// user and system) and resident memory, all of it and the anonymous part
// (the rest is mostly the binary's pages, shared by processes of one file).
type procUsage struct {
	cpu       time.Duration
	rss, anon int64
}

// readProc reads pid's CPU time and memory, and checks that it is an Envoy.
func readProc(pid int) (procUsage, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	comm, err := os.ReadFile(dir + "/comm")
	if err != nil {
		return procUsage{}, err
	}
	if c := strings.TrimSpace(string(comm)); !strings.HasPrefix(c, "envoy") {
		return procUsage{}, fmt.Errorf("process %d is %q, not envoy", pid, c)
	}
	var u procUsage
	if u.cpu, err = cpuTime(dir); err != nil {
		return procUsage{}, err
	}
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return procUsage{}, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		name, v, _ := strings.Cut(line, ":")
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch {
		case name != "VmRSS" && name != "RssAnon":
		case err != nil:
			return procUsage{}, fmt.Errorf("%s/status %s %q: %w", dir, name, v, err)
		case name == "VmRSS":
			u.rss = kb << 10
		default:
			u.anon = kb << 10
		}
	}
	if u.rss == 0 || u.anon == 0 {
		return procUsage{}, fmt.Errorf("%s/status has no VmRSS or RssAnon", dir)
	}
	return u, nil
}

// cpuTime sums the time on a CPU of the process's threads, in
// nanoseconds (the first field of each /proc/<pid>/task/<tid>/schedstat;
// /proc/<pid>/stat counts in 10 ms ticks, too coarse for a short run).
func cpuTime(dir string) (time.Duration, error) {
	tasks, err := os.ReadDir(dir + "/task")
	if err != nil {
		return 0, err
	}
	var sum time.Duration
	for _, task := range tasks {
		b, err := os.ReadFile(dir + "/task/" + task.Name() + "/schedstat")
		if err != nil {
			continue // a thread that has just ended
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return 0, fmt.Errorf("%s/task/%s/schedstat is empty", dir, task.Name())
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s/task/%s/schedstat %q: %w", dir, task.Name(), b, err)
		}
		sum += time.Duration(ns)
	}
	if sum == 0 {
		return 0, fmt.Errorf("%s: no thread has run", dir)
	}
	return sum, nil
}

func mustReadProc(t *testing.T, pid int) procUsage {
	t.Helper()
	u, err := readProc(pid)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// sidecarUsage is one sidecar's share of a run.
type sidecarUsage struct {
	// cores is CPU time over wall time (1 = one core busy).
	cores float64
	// rss, its anonymous part and allocated (Envoy's
	// server.memory_allocated, the heap in use) after the run, in bytes.
	rss, anon, allocated int64
}

// hopRun is one rate's pair of runs, direct and through the sidecars.
type hopRun struct {
	rate           float64
	run            int
	direct, mesh   netpod.RateResult
	client, server sidecarUsage
	load           string
}

// measureHop runs the direct path and the sidecar path at one rate, the
// one first or the other by meshFirst, and the sidecars' usage during the
// sidecar path's run.
func (f *hopFixture) measureHop(t *testing.T, o netpod.RateOptions, meshFirst bool) hopRun {
	t.Helper()
	r := hopRun{rate: o.Rate, load: loadAverage(t)}
	if !meshFirst {
		r.direct = rateLoad(t, f.directClient, f.directURL, o)
	}
	r.mesh, r.client, r.server = f.meshRun(t, o)
	if meshFirst {
		r.direct = rateLoad(t, f.directClient, f.directURL, o)
	}
	return r
}

func (f *hopFixture) meshRun(t *testing.T, o netpod.RateOptions) (res netpod.RateResult, client, server sidecarUsage) {
	t.Helper()
	c0, s0 := mustReadProc(t, f.clientEnvoy), mustReadProc(t, f.serverEnvoy)
	start := time.Now()
	res = rateLoad(t, f.client, f.meshURL, o)
	wall := time.Since(start)
	c1, s1 := mustReadProc(t, f.clientEnvoy), mustReadProc(t, f.serverEnvoy)
	usage := func(p *pod, before, after procUsage) sidecarUsage {
		return sidecarUsage{
			cores: float64(after.cpu-before.cpu) / float64(wall), rss: after.rss, anon: after.anon,
			allocated: int64(metric(p.stats(t), "envoy_server_memory_allocated")),
		}
	}
	return res, usage(f.client, c0, c1), usage(f.server, s0, s1)
}

// loadAverage is /proc/loadavg's first three fields (what uptime prints).
func loadAverage(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// checkRate fails t unless every scheduled request succeeded.
func checkRate(t *testing.T, what string, res netpod.RateResult, o netpod.RateOptions) {
	t.Helper()
	want := int(o.Duration.Seconds() * o.Rate)
	if res.Errors != 0 || res.OK != res.Scheduled || res.Scheduled < want-1 {
		t.Errorf("%s: %d scheduled (want %d), %d ok, %d failed (%s)", what, res.Scheduled, want, res.OK, res.Errors, res.FirstError)
	}
	if res.Latency.P50 <= 0 || res.Latency.Max < res.Latency.P99 || res.Latency.P99 < res.Latency.P50 {
		t.Errorf("%s: latencies %+v not recorded", what, res.Latency)
	}
	// Keep-alive: connections are reused. (Go's client may open a few
	// more than Connections when one closes or a dial races an idle one.)
	if res.Dials < 1 || res.Dials > int64(res.Scheduled/10) {
		t.Errorf("%s: %d connections opened for %d requests, want 1 to %d (keep-alive)", what, res.Dials, res.Scheduled, res.Scheduled/10)
	}
}

// TestHopLoad is the benchmark's short check: 200 requests at 100 per
// second on each path all succeed with their latencies recorded over
// reused (keep-alive) connections, the sidecar path's requests reach the server
// through its sidecar over mTLS, and the sidecars' CPU and memory are read.
func TestHopLoad(t *testing.T) {
	needRoot(t)
	f := newHopFixture(t)
	inbound := inboundRequests(t, f.server)
	o := netpod.RateOptions{Rate: 100, Duration: 2 * time.Second, BodySize: hopBodySize, Connections: 4}
	r := f.measureHop(t, o, false)
	checkRate(t, "direct", r.direct, o)
	checkRate(t, "through the sidecars", r.mesh, o)
	if got := inboundRequests(t, f.server) - inbound; got < float64(r.mesh.Scheduled) {
		t.Errorf("the server's sidecar forwarded %v requests to its app, want at least %d", got, r.mesh.Scheduled)
	}
	if hs := inboundHandshakes(t, f.server); hs < 1 {
		t.Errorf("the server's sidecar completed %v inbound TLS handshakes, want at least 1 (mTLS)", hs)
	}
	for name, u := range map[string]sidecarUsage{"client": r.client, "server": r.server} {
		if u.cores <= 0 || u.rss <= 0 || u.anon <= 0 || u.allocated <= 0 {
			t.Errorf("the %s sidecar's usage %+v: want CPU, RSS and memory_allocated above 0", name, u)
		}
	}
}
