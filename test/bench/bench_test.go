package bench

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/capstanmesh/capstan/test/bench/sidecars"
)

// TestMain runs the simulated sidecars when the harness re-executes the
// test binary as the sidecar process (EnvSidecars).
func TestMain(m *testing.M) {
	if os.Getenv(EnvSidecars) == "1" {
		if err := sidecars.Main(context.Background(), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "sidecar process:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if cfg := os.Getenv(EnvRun); cfg != "" {
		if err := RunIsolatedMain(context.Background(), cfg, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "control-plane process:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// sidecarArgs make the re-executed test binary run no test.
var sidecarArgs = []string{"-test.run=^$"}

// The short version of the harness: every simulated sidecar converges to
// the expected config (an assignment of every service with its endpoints,
// every route's split), and each change reaches every affected proxy.
func TestShortRunConverges(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name              string
		sotw, tls, scoped bool
		services, proxies int
	}{
		{name: "delta plaintext", services: 200, proxies: 50},
		{name: "sotw tls", sotw: true, tls: true, services: 50, proxies: 10},
		{name: "delta scoped", scoped: true, services: 200, proxies: 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mesh := Mesh{Services: tc.services, Endpoints: 3, Namespaces: 4, Proxies: tc.proxies, Routes: 5, Scoped: tc.scoped, Dependencies: 5}
			res, err := Run(t.Context(), Config{
				Mesh: mesh, SotW: tc.sotw, TLS: tc.tls, Deadline: 40 * time.Second, Verify: true, SidecarArgs: sidecarArgs,
			})
			if err != nil {
				t.Fatal(err)
			}
			logResult(t, res)
			checkConverged(t, res, tc.proxies)
		})
	}
}

func checkConverged(t *testing.T, res *RunResult, proxies int) {
	t.Helper()
	if res.DNF != "" {
		t.Fatalf("the run did not finish: %s (initial: %v)", res.DNF, res.Initial.Errors)
	}
	if res.Initial.Done != proxies || len(res.Initial.Errors) > 0 {
		t.Fatalf("%d of %d proxies converged (stream errors %v)", res.Initial.Done, proxies, res.Initial.Errors)
	}
	for _, f := range res.Failures {
		t.Errorf("config check: %s", f)
	}
	if len(res.Changes) != 3 {
		t.Fatalf("%d changes measured, want 3", len(res.Changes))
	}
	for _, c := range res.Changes {
		// Every sidecar holds every service (or, scoped, declares service 0
		// and the new service), so every change affects all.
		if c.Proxies != proxies || c.Done != proxies || len(c.Errors) > 0 {
			t.Errorf("%s change: %d of %d affected proxies ACKed it, want all %d (stream errors %v)",
				c.Name, c.Done, c.Proxies, proxies, c.Errors)
		}
	}
}

func logResult(t *testing.T, res *RunResult) {
	t.Helper()
	t.Logf("generate %.2fs (%.2f CPU s); initial p50 %.3fs max %.3fs, %.0f bytes/proxy, %d resources resent; heap %d MB, RSS %d MB",
		res.GenerateSeconds, res.GenerateCPUSeconds, res.Initial.P50, res.Initial.Max, res.ConfigBytesPerProxy, res.Initial.Resent,
		res.HeapBytes>>20, res.RSSBytes>>20)
	for _, c := range res.Changes {
		t.Logf("%s: %d/%d p50 %.3fs p99 %.3fs max %.3fs, %d bytes (%d resources resent), %.2f CPU s",
			c.Name, c.Done, c.Proxies, c.P50, c.P99, c.Max, c.Bytes, c.Resent, c.CPUSeconds)
	}
}
