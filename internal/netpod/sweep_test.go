package netpod

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// needRoot skips t where network namespaces cannot be made.
func needRoot(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("needs root on Linux (network namespaces, veth pairs, a bridge)")
	}
}

// eventually polls check every 20ms until it returns nil or timeout passes.
func eventually(t *testing.T, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSweepRemovesLeftovers: what a killed run leaves — a namespace with a
// process still in it, its veth pair, its hosts directory, a blackhole
// route — is removed by the next run's sweep, because no live run holds
// its slot; this run's own network, whose slot is held, is left alone.
func TestSweepRemovesLeftovers(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	live, err := NewNetwork(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := live.Close(); err != nil {
			t.Error(err)
		}
	})
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
	eventually(t, 10*time.Second, func() error {
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
	eventually(t, 10*time.Second, func() error {
		if exited, _ := orphan.Exited(); !exited {
			return errors.New("the process in the swept namespace still runs")
		}
		return nil
	})
	if !linkExists(ctx, live.Bridge) {
		t.Errorf("the sweep removed this run's bridge %s", live.Bridge)
	}
}
