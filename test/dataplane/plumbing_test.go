package dataplane

import (
	"context"
	"fmt"
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
