package dataplane

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capstanmesh/capstan/test/envtest"
)

// newNetns makes a namespace for t, removed when t ends.
func newNetns(t *testing.T, hostname string) *Netns {
	t.Helper()
	ns, err := network.AddNetns(context.Background(), hostname)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ns.Remove(); err != nil {
			t.Errorf("removing %s: %v", ns.Name, err)
		}
	})
	return ns
}

// startApp runs an app in ns until t ends.
func startApp(t *testing.T, ns *Netns, cfg AppConfig) *Proc {
	t.Helper()
	cmd, err := AppCommand(context.Background(), ns, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := StartProc(cfg.Mode+" "+cfg.Name, cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(5 * time.Second); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", p.Name, p.Output())
		}
	})
	return p
}

// calls runs a client to completion in ns and returns its results.
func calls(t *testing.T, ns *Netns, cfg AppConfig) []CallResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd, err := AppCommand(ctx, ns, cfg)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("client in %s: %v\n%s", ns.Name, err, out)
	}
	res, err := ParseCalls(string(out))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// waitServing polls until a client in from reaches url.
func waitServing(t *testing.T, from *Netns, url string) {
	t.Helper()
	envtest.Eventually(t, 30*time.Second, func() error {
		res := calls(t, from, AppConfig{Mode: HTTPClient, URL: url, Count: 1, Timeout: time.Second})
		if len(res) != 1 || !res[0].OK {
			return fmt.Errorf("%s from %s: %+v", url, from.Name, res)
		}
		return nil
	})
}

// TestPodsReachEachOtherByName: two namespaces on the bridge, an HTTP
// server in one, a client in the other calling it by the name its hosts
// file gives; a Service address goes nowhere without a sidecar.
func TestPodsReachEachOtherByName(t *testing.T) {
	needRoot(t)
	server := newNetns(t, "server")
	client := newNetns(t, "client")
	if err := network.SetHost(server.IP.String(), "server.plumbing"); err != nil {
		t.Fatal(err)
	}
	startApp(t, server, AppConfig{Mode: HTTPServer, Name: "server", Port: 8080})
	url := "http://server.plumbing:8080/hello"
	waitServing(t, client, url)

	res := calls(t, client, AppConfig{Mode: HTTPClient, URL: url, Count: 3, NewConnections: true})
	for _, r := range res {
		if !r.OK || r.Report == nil || r.Report.Pod != "server" || r.Report.Path != "/hello" {
			t.Errorf("call %d: %+v", r.N, r)
			continue
		}
		if host, _, _ := strings.Cut(r.Report.RemoteAddr, ":"); host != client.IP.String() {
			t.Errorf("server saw the call from %s, want the client pod's %s", r.Report.RemoteAddr, client.IP)
		}
	}
	if len(res) != 3 {
		t.Errorf("%d calls, want 3", len(res))
	}

	// A ClusterIP without a sidecar to capture it reaches the host's
	// blackhole route.
	svcIP := network.ServiceCIDR.Addr().Next().Next()
	res = calls(t, client, AppConfig{Mode: HTTPClient, URL: fmt.Sprintf("http://%s:8080/", svcIP), Count: 1, Timeout: 2 * time.Second})
	if len(res) != 1 || res[0].OK || res[0].Error == "" {
		t.Errorf("a call to the Service range %s: %+v, want an error", svcIP, res)
	}
}

// TestSweepRemovesLeftovers: what a killed run leaves — a namespace with a
// process still in it, its veth pair, its hosts directory, a blackhole
// route — is removed by the next run's sweep, because no live run holds
// its slot; this run's own network, whose slot is held, is left alone.
func TestSweepRemovesLeftovers(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	slot := -1
	for s := range 256 {
		if busy, err := rangeInUse(ctx, s); err != nil || busy {
			continue
		}
		if lock, ok, err := lockSlot(s); err == nil && ok {
			_ = unlockSlot(lock, s)
			slot = s
			break
		}
	}
	if slot < 0 {
		t.Skip("no free slot to leave leftovers in")
	}
	crashed := newNetwork(slot, nil)
	t.Cleanup(func() { _ = sweepSlot(context.Background(), slot) })
	if err := crashed.create(ctx); err != nil {
		t.Fatal(err)
	}
	ns, err := crashed.AddNetns(ctx, "leftover")
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := StartProc("orphan", ns.Command(ctx, "sleep", "600"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = orphan.Stop(time.Second) })
	envtest.Eventually(t, 10*time.Second, func() error {
		out, err := ip(ctx, "netns", "pids", ns.Name)
		if err != nil || strings.TrimSpace(out) == "" {
			return fmt.Errorf("no process in %s yet (%w)", ns.Name, err)
		}
		return nil
	})

	if err := Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if netnsExists(ctx, ns.Name) || linkExists(ctx, ns.HostVeth) || linkExists(ctx, crashed.Bridge) {
		t.Errorf("after the sweep: namespace %s %v, veth %v, bridge %v", ns.Name,
			netnsExists(ctx, ns.Name), linkExists(ctx, ns.HostVeth), linkExists(ctx, crashed.Bridge))
	}
	if out, _ := ip(ctx, "route", "show", "type", "blackhole", crashed.ServiceCIDR.String()); strings.TrimSpace(out) != "" {
		t.Errorf("the blackhole route survived the sweep: %s", out)
	}
	if _, err := os.Stat(filepath.Join(netnsDir, ns.Name)); !os.IsNotExist(err) {
		t.Errorf("the hosts directory of %s survived the sweep: %v", ns.Name, err)
	}
	envtest.Eventually(t, 10*time.Second, func() error {
		if exited, _ := orphan.Exited(); !exited {
			return errors.New("the process in the swept namespace still runs")
		}
		return nil
	})
	if !linkExists(ctx, network.Bridge) {
		t.Errorf("the sweep removed this run's bridge %s", network.Bridge)
	}
}
