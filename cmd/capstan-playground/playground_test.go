package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capstanmesh/capstan/internal/netpod"
	"github.com/capstanmesh/capstan/test/envtest"
)

func TestMain(m *testing.M) {
	// The pods' apps are this test binary started again in their namespaces.
	if cfg := os.Getenv(netpod.AppEnv); cfg != "" {
		os.Exit(netpod.RunApp(cfg))
	}
	os.Exit(m.Run())
}

// playgroundOptions builds the operator and capstan-init into a directory
// the proxy's user can read, as `make run` builds them into bin/.
func playgroundOptions(t *testing.T) options {
	t.Helper()
	root, err := envtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", netpod.Prefix+"-playground-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, pkg := range []string{"manager", "capstan-init"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, pkg), "./cmd/"+pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", pkg, err, out)
		}
	}
	envoy := os.Getenv("CAPSTAN_ENVOY")
	if envoy == "" {
		envoy = filepath.Join(root, "bin", "envoy-1.40.0")
	}
	return options{
		kubeconfig: filepath.Join(dir, "kubeconfig"), logDir: filepath.Join(dir, "logs"),
		manager: filepath.Join(dir, "manager"), capstanInit: filepath.Join(dir, "capstan-init"), envoy: envoy,
		refresh: time.Second, plain: true,
	}
}

// live is a playground running for a test, and the snapshots it showed.
type live struct {
	opts  options
	snaps chan Snapshot
	out   *netpod.SyncBuffer
	pg    *playground
}

// startPlayground runs the playground as `make run` does (in-process) until
// t ends, and checks then that it stopped cleanly and left nothing behind.
func startPlayground(t *testing.T) *live {
	return startPlaygroundWith(t, false)
}

// startPlaygroundWith is startPlayground, in the proxyless fallback when
// proxyless is set.
func startPlaygroundWith(t *testing.T, proxyless bool) *live {
	t.Helper()
	l := &live{opts: playgroundOptions(t), snaps: make(chan Snapshot, 1000), out: &netpod.SyncBuffer{}}
	l.opts.proxyless = proxyless
	started := make(chan *playground, 1)
	l.opts.onStarted = func(pg *playground) { started <- pg }
	if proxyless {
		l.opts.onStarted = nil
		close(started)
	}
	l.opts.onSnapshot = func(s Snapshot) {
		select {
		case l.snaps <- s:
		default:
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, l.opts, l.out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("the playground: %v", err)
			}
		case <-time.After(2 * time.Minute):
			t.Error("the playground did not stop within 2m")
		}
		if l.pg != nil {
			checkNothingLeft(t, l.pg, l.opts)
		} else if _, err := os.Stat(l.opts.kubeconfig); !os.IsNotExist(err) {
			t.Errorf("the kubeconfig %s is left (%v)", l.opts.kubeconfig, err)
		}
		if t.Failed() {
			t.Logf("playground output:\n%s", l.out.String())
			logFile(t, filepath.Join(l.opts.logDir, "operator.log"))
		}
	})
	if proxyless {
		return l
	}
	select {
	case l.pg = <-started:
	case err := <-done:
		done <- err
		t.Fatalf("the playground did not start: %v", err)
	case <-time.After(4 * time.Minute):
		t.Fatal("the playground did not start within 4m")
	}
	return l
}

func logFile(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	if len(data) > 20000 {
		data = data[len(data)-20000:]
	}
	t.Logf("%s (end):\n%s", path, data)
}

// checkNothingLeft: no namespace, link or hosts directory of the run's
// slot, and no kubeconfig.
func checkNothingLeft(t *testing.T, pg *playground, opts options) {
	t.Helper()
	out, err := exec.Command("ip", "-o", "link", "show").CombinedOutput()
	if err != nil {
		t.Fatalf("ip link: %v", err)
	}
	if strings.Contains(string(out), pg.net.Bridge) {
		t.Errorf("the bridge %s is left:\n%s", pg.net.Bridge, out)
	}
	out, err = exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns: %v", err)
	}
	for _, p := range pg.pods {
		if strings.Contains(string(out), p.netns.Name+" ") || strings.HasSuffix(strings.TrimSpace(string(out)), p.netns.Name) {
			t.Errorf("the namespace %s of %s is left", p.netns.Name, p.obj.Name)
		}
		if _, err := os.Stat(filepath.Join("/etc/netns", p.netns.Name)); !os.IsNotExist(err) {
			t.Errorf("the hosts directory of %s is left (%v)", p.netns.Name, err)
		}
	}
	if _, err := os.Stat(opts.kubeconfig); !os.IsNotExist(err) {
		t.Errorf("the kubeconfig %s is left (%v)", opts.kubeconfig, err)
	}
}

// waitView waits until the view shows a snapshot for which ok returns nil.
func (l *live) waitView(t *testing.T, timeout time.Duration, ok func(Snapshot) error) Snapshot {
	t.Helper()
	deadline := time.After(timeout)
	err := fmt.Errorf("no snapshot yet")
	for {
		select {
		case s := <-l.snaps:
			if err = ok(s); err == nil {
				return s
			}
		case <-deadline:
			t.Fatalf("after %v the view shows: %v", timeout, err)
		}
	}
}

// kubectl runs kubectl with the kubeconfig the playground wrote, from the
// repository's root, as the printed commands do.
func (l *live) kubectl(t *testing.T, args ...string) {
	t.Helper()
	root, err := envtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(root, "bin", "k8s", "kubectl"), append([]string{"--kubeconfig", l.opts.kubeconfig}, args...)...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if strings.Contains(string(out), "Warning") {
		t.Errorf("kubectl %s warned:\n%s", strings.Join(args, " "), out)
	}
}

func share(s Snapshot, subset int) float64 { return s.Subsets[subset].Share }

// TestPlayground runs `make run`'s playground for real: the view first
// shows every call of frontend on v1 over mTLS and the legacy caller
// accepted; every sample the footer names is accepted by the API server
// (and its webhooks); canary-50 moves the measured split to about half on
// v2, canary-100 to all of it; the
// STRICT sample gets the legacy caller refused while frontend's calls go
// on. At the end nothing is left behind.
func TestPlayground(t *testing.T) {
	if why := netnsUnavailable(); why != "" {
		t.Skip(why)
	}
	l := startPlayground(t)
	l.waitView(t, 2*time.Minute, func(s Snapshot) error {
		if s.Subsets[0].RPS < 5 || share(s, 0) < 0.99 || s.Subsets[0].MTLS != "yes" || s.Legacy.Accepted <= 0 {
			return fmt.Errorf("%+v", s)
		}
		return nil
	})
	for _, s := range samples {
		l.kubectl(t, "apply", "--dry-run=server", "-f", filepath.Join("config", "samples", s.file))
	}

	l.kubectl(t, "apply", "-f", "config/samples/canary-50.yaml")
	l.waitView(t, time.Minute, func(s Snapshot) error {
		if s.Subsets[1].RPS < 3 || share(s, 1) < 0.2 || share(s, 1) > 0.8 {
			return fmt.Errorf("%+v", s.Subsets)
		}
		return nil
	})

	l.kubectl(t, "apply", "-f", "config/samples/canary-100.yaml")
	l.waitView(t, time.Minute, func(s Snapshot) error {
		if share(s, 1) < 0.99 || s.Subsets[1].RPS < 5 || s.Subsets[1].Success != 1 || s.Subsets[1].MTLS != "yes" {
			return fmt.Errorf("%+v", s.Subsets)
		}
		return nil
	})

	l.kubectl(t, "apply", "-f", "config/samples/strict-mtls.yaml")
	l.waitView(t, time.Minute, func(s Snapshot) error {
		if s.Legacy.Accepted != 0 || s.Legacy.Refused <= 0 || s.Subsets[1].RPS < 5 || s.Subsets[1].Success != 1 {
			return fmt.Errorf("legacy %+v, frontend %+v", s.Legacy, s.Subsets[1])
		}
		return nil
	})
}

// TestPlaygroundProxyless runs the fallback for machines without network
// namespaces (forced here with -proxyless): a proxyless gRPC client gets
// the demo's routes from the operator; the view says so, shows all calls
// on v1, then all on v2 after canary-100.
func TestPlaygroundProxyless(t *testing.T) {
	l := startPlaygroundWith(t, true)
	l.waitView(t, 2*time.Minute, func(s Snapshot) error {
		if !s.Proxyless || s.Subsets[0].RPS < 5 || share(s, 0) < 0.99 || s.All.Success != 1 {
			return fmt.Errorf("%+v", s)
		}
		return nil
	})
	if out := l.out.String(); !strings.Contains(out, "falling back to a proxyless gRPC client") {
		t.Errorf("the playground does not say it fell back:\n%s", out)
	}
	l.kubectl(t, "apply", "-f", "config/samples/canary-100.yaml")
	l.waitView(t, time.Minute, func(s Snapshot) error {
		if share(s, 1) < 0.99 || s.Subsets[1].RPS < 5 || s.All.Success != 1 {
			return fmt.Errorf("%+v", s.Subsets)
		}
		return nil
	})
}
