package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/pki"
	"github.com/capstanmesh/capstan/test/bench/sidecars"
	"github.com/capstanmesh/capstan/xds/translate"
)

// Config is one run of the harness.
type Config struct {
	Mesh Mesh
	// SotW uses state-of-the-world streams instead of delta.
	SotW bool
	// TLS serves xDS over TLS (stream authentication stays off).
	TLS bool
	// Deadline bounds each wait (generation, initial convergence, each change).
	Deadline time.Duration
	// Verify checks, after the initial convergence, that every proxy holds
	// an endpoint assignment of every service and every route's split.
	Verify bool
	// ProfileDir, when set, receives cpu.pprof (generation and the initial
	// convergence), cpu-changes.pprof (the three changes) and heap.pprof
	// (after the initial convergence) of the control plane.
	ProfileDir string
	// SidecarArgs are the arguments of the re-executed sidecar process.
	SidecarArgs []string
}

// Wait summarises how a set of proxies got to a config.
type Wait struct {
	Proxies int `json:"proxies"`
	Done    int `json:"done"`
	// P50, P99 and Max are latencies in seconds.
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
	// Bytes are the payload bytes the proxies received; Resent counts the
	// resources among them that the receiving proxy already held, identical.
	Bytes  int64    `json:"bytes"`
	Resent int64    `json:"resent"`
	Errors []string `json:"errors,omitempty"`
}

// ChangeResult is the outcome of one change.
type ChangeResult struct {
	Name string `json:"name"`
	Wait
	// CPUSeconds is the control plane's CPU time from the change until
	// every affected proxy ACKed it and traffic settled.
	CPUSeconds float64 `json:"cpuSeconds"`
}

// RunResult is the outcome of one run.
type RunResult struct {
	Proxies   int `json:"proxies"`
	Services  int `json:"services"`
	Endpoints int `json:"endpoints"`
	// GenerateSeconds and GenerateCPUSeconds: from the first push until the
	// server held config for every proxy, before any connected.
	GenerateSeconds    float64 `json:"generateSeconds"`
	GenerateCPUSeconds float64 `json:"generateCPUSeconds"`
	// Initial: from all proxies connecting at once until each held a complete config.
	Initial Wait `json:"initial"`
	// ConfigBytesPerProxy is Initial.Bytes / proxies.
	ConfigBytesPerProxy float64 `json:"configBytesPerProxy"`
	// HeapBytes (after a GC) and RSSBytes of the control plane once every
	// proxy converged.
	HeapBytes uint64         `json:"heapBytes"`
	RSSBytes  uint64         `json:"rssBytes"`
	Changes   []ChangeResult `json:"changes"`
	// Failures are the verification's failures (Config.Verify).
	Failures []string `json:"failures,omitempty"`
	// DNF says why the run did not finish; empty when it did.
	DNF string `json:"dnf,omitempty"`
}

// phase says what the current run is doing, progress holds a copy of its
// result so far and stopProfiling flushes its CPU profile: what a run ended
// by the RSS budget still reports (see guardRSS).
var (
	phase         atomic.Value
	progress      atomic.Pointer[RunResult]
	stopProfiling atomic.Pointer[func()]
)

// record publishes a copy of res as the run's progress.
func record(res *RunResult) {
	c := *res
	c.Changes = slices.Clone(res.Changes)
	progress.Store(&c)
}

// Run runs the harness once: start the control plane, push the mesh, wait
// until config for every proxy is generated, connect the sidecars, wait for
// them to converge, then make each change and wait for its affected proxies.
func Run(ctx context.Context, cfg Config) (res *RunResult, err error) {
	in := cfg.Mesh.Inputs()
	nodes := NodeIDs(in)
	res = &RunResult{Proxies: len(nodes), Services: cfg.Mesh.Services, Endpoints: cfg.Mesh.Endpoints}
	cp, err := startControlPlane(ctx, cfg.TLS, identities(in))
	if err != nil {
		return nil, err
	}
	defer func() {
		if stopErr := cp.stop(); err == nil && stopErr != nil {
			err = fmt.Errorf("control plane: %w", stopErr)
		}
	}()
	stopProfile, err := startCPUProfile(cfg.ProfileDir, "cpu.pprof")
	if err != nil {
		return nil, err
	}
	stopProfiling.Store(&stopProfile)
	defer func() { (*stopProfiling.Load())() }()
	phase.Store("generating config for every proxy")
	if !generateAll(cp, in, nodes, cfg.Deadline, res) {
		return res, nil
	}
	sp, err := startSidecars(cfg.SidecarArgs...)
	if err != nil {
		return nil, err
	}
	defer func() {
		if stopErr := sp.stop(); err == nil && stopErr != nil {
			err = stopErr
		}
	}()
	record(res)
	phase.Store("connecting the sidecars")
	if err := connectAll(cp, sp, nodes, cfg, res); err != nil || res.DNF != "" {
		return res, err
	}
	record(res)
	stopProfile()
	stopChanges, err := startCPUProfile(cfg.ProfileDir, "cpu-changes.pprof")
	if err != nil {
		return nil, err
	}
	stopProfiling.Store(&stopChanges)
	phase.Store("making the changes")
	return res, runPhases(cp, sp, in, cfg, res)
}

// generateAll pushes the mesh and waits until every proxy has config.
func generateAll(cp *controlPlane, in *translate.Inputs, nodes []string, deadline time.Duration, res *RunResult) bool {
	cpu0, t0 := cpuSeconds(), time.Now()
	cp.push(in)
	ok := waitFor(deadline, 10*time.Millisecond, func() bool { return cp.published(nodes) == len(nodes) })
	res.GenerateSeconds, res.GenerateCPUSeconds = time.Since(t0).Seconds(), cpuSeconds()-cpu0
	if !ok {
		res.DNF = fmt.Sprintf("config for %d of %d proxies generated within %s", cp.published(nodes), len(nodes), deadline)
	}
	return ok
}

func connectAll(cp *controlPlane, sp *sidecarProcess, nodes []string, cfg Config, res *RunResult) error {
	cmd := sidecars.Command{Op: sidecars.OpConnect, Addr: cp.addr, Nodes: nodes, SotW: cfg.SotW, Deadline: cfg.Deadline}
	if cfg.TLS {
		cmd.CAPEM, cmd.ServerName = cp.caPEM, serverName
	}
	reply, err := sp.call(cmd)
	if err != nil {
		return err
	}
	res.Initial = summarize(reply.Result)
	res.ConfigBytesPerProxy = float64(res.Initial.Bytes) / float64(max(len(nodes), 1))
	res.HeapBytes = heapAfterGC()
	if res.RSSBytes, err = rssBytes(); err != nil {
		return err
	}
	if res.Initial.Done < res.Initial.Proxies {
		res.DNF = fmt.Sprintf("%d of %d proxies converged within %s", res.Initial.Done, res.Initial.Proxies, cfg.Deadline)
	}
	return writeHeapProfile(cfg.ProfileDir, "heap.pprof")
}

// runPhases verifies the initial config (when asked) and makes the three changes.
func runPhases(cp *controlPlane, sp *sidecarProcess, in *translate.Inputs, cfg Config, res *RunResult) error {
	if cfg.Verify {
		v := sidecars.Verification{Services: cfg.Mesh.ServiceIPs()}
		for _, w := range cfg.Mesh.RouteWeights() {
			v.Splits = append(v.Splits, splitKey(w))
		}
		reply, err := sp.call(sidecars.Command{Op: sidecars.OpVerify, Verify: v})
		if err != nil {
			return err
		}
		res.Failures = reply.Failures
	}
	cur := in
	for _, next := range []func(*translate.Inputs) Change{cfg.Mesh.EndpointChange, cfg.Mesh.WeightChange, cfg.Mesh.NewService} {
		ch := next(cur)
		cur = ch.Inputs
		cr, err := runChange(sp, ch, cfg.Deadline, func() error { cp.push(ch.Inputs); return nil })
		if err != nil {
			return err
		}
		res.Changes = append(res.Changes, cr)
		record(res)
		if cr.Done < cr.Proxies && res.DNF == "" {
			res.DNF = fmt.Sprintf("%s change: %d of %d proxies within %s", ch.Name, cr.Done, cr.Proxies, cfg.Deadline)
		}
	}
	return nil
}

// runChange arms the change's expectation in the sidecars, makes the
// change with apply and waits for every affected proxy.
func runChange(sp *sidecarProcess, ch Change, deadline time.Duration, apply func() error) (ChangeResult, error) {
	exp := sidecars.Expectation{NewIP: ch.Expect.NewIP, OldIP: ch.Expect.OldIP}
	if ch.Expect.Weights != nil {
		exp.Split = splitKey(ch.Expect.Weights)
	}
	if _, err := sp.call(sidecars.Command{Op: sidecars.OpExpect, Expect: exp}); err != nil {
		return ChangeResult{}, err
	}
	cpu0, t0 := cpuSeconds(), time.Now()
	if err := apply(); err != nil {
		return ChangeResult{}, fmt.Errorf("making the %s change: %w", ch.Name, err)
	}
	reply, err := sp.call(sidecars.Command{Op: sidecars.OpAwait, T0: t0.UnixNano(), Deadline: deadline})
	if err != nil {
		return ChangeResult{}, err
	}
	return ChangeResult{Name: ch.Name, Wait: summarize(reply.Result), CPUSeconds: cpuSeconds() - cpu0}, nil
}

func summarize(r *sidecars.Result) Wait {
	if r == nil {
		return Wait{}
	}
	return Wait{
		Proxies: r.Proxies, Done: r.Done, Bytes: r.Bytes, Resent: r.Resent, Errors: r.StreamErrors,
		P50: quantile(r.Latencies, 0.5), P99: quantile(r.Latencies, 0.99), Max: quantile(r.Latencies, 1),
	}
}

// quantile of sorted values (nearest rank); 0 for none.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// identities are the SPIFFE IDs of the injected pods.
func identities(in *translate.Inputs) []string {
	var out []string
	for i := range in.Pods {
		p := &in.Pods[i]
		if _, ok := p.Annotations[meshv1alpha1.AnnotationStatus]; ok {
			out = append(out, pki.SpiffeID("cluster.local", p.Namespace, p.Spec.ServiceAccountName))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func splitKey(ws []uint32) string {
	s := ""
	for i, w := range ws {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprint(w)
	}
	return s
}

func startCPUProfile(dir, name string) (func(), error) {
	if dir == "" {
		return func() {}, nil
	}
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return nil, fmt.Errorf("creating the CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("starting the CPU profile: %w", err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			_ = f.Close()
		})
	}, nil
}

func writeHeapProfile(dir, name string) error {
	if dir == "" {
		return nil
	}
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return fmt.Errorf("creating the heap profile: %w", err)
	}
	defer func() { _ = f.Close() }()
	if err := pprof.WriteHeapProfile(f); err != nil {
		return fmt.Errorf("writing the heap profile: %w", err)
	}
	return nil
}
