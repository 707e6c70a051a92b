package netpod

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Names and addresses. Everything this package creates on the host carries
// Prefix, followed by the run's slot (two hex digits), so that a sweep can
// tell its own leftovers from anything else and from a concurrent run.
const (
	// Prefix starts the name of every bridge, veth, network namespace and
	// /etc/netns directory the harness makes.
	Prefix = "cpdp"
	// lockDir holds one lock file per slot, held (flock) by the run using it.
	lockDir = "/run/capstan-dataplane"
	// netnsDir is where `ip netns exec` finds per-namespace /etc files.
	netnsDir = "/etc/netns"
)

// Test-only address ranges (RFC 2544's benchmark range 198.18.0.0/15): a
// run with slot X puts its pods in 198.18.X.0/24 (the bridge is .1) and its
// Services in 198.19.X.0/24.
var (
	podRange     = netip.MustParseAddr("198.18.0.0")
	serviceRange = netip.MustParseAddr("198.19.0.0")
)

// Network is one run's bridge on the host with its pods' namespaces. The
// host's address on the bridge (Gateway) is where the control plane
// listens; the Service range is blackholed on the host, so a ClusterIP
// that escapes a pod's capture rules goes nowhere. Forwarding is off on
// the bridge: nothing a pod sends leaves the machine.
type Network struct {
	Slot        int
	Bridge      string
	Gateway     netip.Addr
	PodCIDR     netip.Prefix
	ServiceCIDR netip.Prefix

	lock *os.File

	mu    sync.Mutex
	used  map[int]bool      // pod address suffixes (2..254) in use
	hosts map[string]string // name → address, in every pod's hosts file
	pods  map[string]*Netns // by namespace name
}

// Netns is one pod's network namespace: eth0 with IP on the bridge, a
// default route through the gateway, and its own /etc/hosts.
type Netns struct {
	Name     string
	IP       netip.Addr
	HostVeth string
	// Hostname is the pod's name, resolved to IP in its hosts file.
	Hostname string

	net    *Network
	suffix int
}

// NewNetwork sweeps what earlier, crashed runs left behind, takes a free
// slot, and creates the bridge and the blackhole route.
func NewNetwork(ctx context.Context) (*Network, error) {
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", lockDir, err)
	}
	if err := Sweep(ctx); err != nil {
		return nil, err
	}
	for _, slot := range rand.Perm(256) {
		lock, ok, err := lockSlot(slot)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		busy, err := rangeInUse(ctx, slot)
		if err != nil || busy {
			_ = unlockSlot(lock, slot)
			if err != nil {
				return nil, err
			}
			continue
		}
		n := newNetwork(slot, lock)
		if err := n.create(ctx); err != nil {
			return nil, errors.Join(err, n.Close())
		}
		return n, nil
	}
	return nil, errors.New("no free slot for a test network (256 in use)")
}

func newNetwork(slot int, lock *os.File) *Network {
	pod := podRange.As4()
	pod[2] = byte(slot)
	gw := pod
	gw[3] = 1
	svc := serviceRange.As4()
	svc[2] = byte(slot)
	return &Network{
		Slot:        slot,
		Bridge:      fmt.Sprintf("%s%02x", Prefix, slot),
		Gateway:     netip.AddrFrom4(gw),
		PodCIDR:     netip.PrefixFrom(netip.AddrFrom4(pod), 24),
		ServiceCIDR: netip.PrefixFrom(netip.AddrFrom4(svc), 24),
		lock:        lock,
		used:        map[int]bool{},
		hosts:       map[string]string{},
		pods:        map[string]*Netns{},
	}
}

// rangeInUse reports whether a route of the host already covers the slot's
// pod or Service range (another program's network).
func rangeInUse(ctx context.Context, slot int) (bool, error) {
	n := newNetwork(slot, nil)
	out, err := ip(ctx, "-4", "route", "show", "table", "all")
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		dst := fields[0]
		if dst == "blackhole" || dst == "unreachable" || dst == "prohibit" || dst == "local" || dst == "broadcast" {
			if len(fields) < 2 {
				continue
			}
			dst = fields[1]
		}
		p, err := netip.ParsePrefix(dst)
		if err != nil {
			if a, err := netip.ParseAddr(dst); err == nil {
				p = netip.PrefixFrom(a, 32)
			} else {
				continue
			}
		}
		if p.Bits() > 0 && (p.Overlaps(n.PodCIDR) || p.Overlaps(n.ServiceCIDR)) {
			return true, nil
		}
	}
	return false, nil
}

func (n *Network) create(ctx context.Context) error {
	steps := [][]string{
		{"link", "add", n.Bridge, "type", "bridge"},
		{"addr", "add", netip.PrefixFrom(n.Gateway, 24).String(), "dev", n.Bridge},
		{"link", "set", n.Bridge, "up"},
		{"route", "add", "blackhole", n.ServiceCIDR.String()},
	}
	for _, s := range steps {
		if _, err := ip(ctx, s...); err != nil {
			return err
		}
	}
	// Packets the pods send to anything but the bridge's own address or
	// another pod are not forwarded, whatever the host's ip_forward says.
	return writeSysctl("net/ipv4/conf/"+n.Bridge+"/forwarding", "0")
}

// Close removes every pod namespace, the bridge and the route, and
// releases the slot.
func (n *Network) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n.mu.Lock()
	pods := make([]*Netns, 0, len(n.pods))
	for _, p := range n.pods {
		pods = append(pods, p)
	}
	n.mu.Unlock()
	var errs []error
	for _, p := range pods {
		errs = append(errs, p.Remove())
	}
	errs = append(errs, sweepSlot(ctx, n.Slot))
	if n.lock != nil {
		errs = append(errs, unlockSlot(n.lock, n.Slot))
	}
	return errors.Join(errs...)
}

// SetHost makes name resolve to addr in every pod's hosts file, present
// and future.
func (n *Network) SetHost(addr string, names ...string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, name := range names {
		n.hosts[name] = addr
	}
	var errs []error
	for _, p := range n.pods {
		errs = append(errs, p.writeHosts())
	}
	return errors.Join(errs...)
}

// AddNetns creates a namespace for the pod hostname with the next free
// address, wired to the bridge.
func (n *Network) AddNetns(ctx context.Context, hostname string) (*Netns, error) {
	n.mu.Lock()
	suffix := 0
	for i := 2; i < 255; i++ {
		if !n.used[i] {
			suffix = i
			break
		}
	}
	if suffix == 0 {
		n.mu.Unlock()
		return nil, errors.New("no free pod address")
	}
	n.used[suffix] = true
	a := n.PodCIDR.Addr().As4()
	a[3] = byte(suffix)
	p := &Netns{
		Name:     fmt.Sprintf("%s-%02x-%d", Prefix, n.Slot, suffix),
		IP:       netip.AddrFrom4(a),
		HostVeth: fmt.Sprintf("%s%02xv%d", Prefix, n.Slot, suffix),
		Hostname: hostname,
		net:      n,
		suffix:   suffix,
	}
	n.pods[p.Name] = p
	n.mu.Unlock()
	if err := p.create(ctx); err != nil {
		return nil, errors.Join(err, p.Remove())
	}
	return p, nil
}

func (p *Netns) create(ctx context.Context) error {
	host := [][]string{
		{"netns", "add", p.Name},
		{"link", "add", p.HostVeth, "type", "veth", "peer", "name", "eth0", "netns", p.Name},
		{"link", "set", p.HostVeth, "master", p.net.Bridge, "up"},
	}
	for _, s := range host {
		if _, err := ip(ctx, s...); err != nil {
			return err
		}
	}
	inside := [][]string{
		{"addr", "add", netip.PrefixFrom(p.IP, 24).String(), "dev", "eth0"},
		{"link", "set", "eth0", "up"},
		{"link", "set", "lo", "up"},
		{"route", "add", "default", "via", p.net.Gateway.String()},
	}
	for _, s := range inside {
		if _, err := ip(ctx, append([]string{"-n", p.Name}, s...)...); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(netnsDir, p.Name), 0o755); err != nil {
		return fmt.Errorf("creating the hosts directory of %s: %w", p.Name, err)
	}
	p.net.mu.Lock()
	defer p.net.mu.Unlock()
	return p.writeHosts()
}

// writeHosts writes /etc/netns/<name>/hosts in place (the same inode, so a
// process that already runs in the namespace sees the change). Call with
// the network's lock held.
func (p *Netns) writeHosts() error {
	var b bytes.Buffer
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	fmt.Fprintf(&b, "%s\t%s\n", p.IP, p.Hostname)
	names := make([]string, 0, len(p.net.hosts))
	for name := range p.net.hosts {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(&b, "%s\t%s\n", p.net.hosts[name], name)
	}
	// No cluster DNS: names come from the hosts file, and a DNS query
	// (gRPC's service config TXT lookup, say) fails at once on the pod's
	// loopback instead of waiting for the host's name server.
	resolv := filepath.Join(netnsDir, p.Name, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", resolv, err)
	}
	path := filepath.Join(netnsDir, p.Name, "hosts")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	_, err = f.Write(b.Bytes())
	return errors.Join(err, f.Close())
}

// Command runs name with args inside the namespace (`ip netns exec`, which
// also puts /etc/netns/<name>/hosts in place of /etc/hosts).
func (p *Netns) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", p.Name, name}, args...)...)
}

// Remove kills whatever still runs in the namespace and deletes it with its
// veth pair and hosts file. It is safe to call twice.
func (p *Netns) Remove() error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := removeNetns(ctx, p.Name, p.HostVeth)
	p.net.mu.Lock()
	delete(p.net.pods, p.Name)
	delete(p.net.used, p.suffix)
	p.net.mu.Unlock()
	return err
}

func removeNetns(ctx context.Context, name, veth string) error {
	var errs []error
	if err := killNetnsProcesses(ctx, name); err != nil {
		errs = append(errs, err)
	}
	if veth != "" && linkExists(ctx, veth) {
		if _, err := ip(ctx, "link", "del", veth); err != nil {
			errs = append(errs, err)
		}
	}
	if netnsExists(ctx, name) {
		if _, err := ip(ctx, "netns", "del", name); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(filepath.Join(netnsDir, name)); err != nil {
		errs = append(errs, fmt.Errorf("removing the hosts directory of %s: %w", name, err))
	}
	return errors.Join(errs...)
}

// killNetnsProcesses SIGKILLs every process in the namespace and waits
// until none is left.
func killNetnsProcesses(ctx context.Context, name string) error {
	for {
		if !netnsExists(ctx, name) {
			return nil
		}
		out, err := ip(ctx, "netns", "pids", name)
		if err != nil {
			return err
		}
		pids := strings.Fields(out)
		if len(pids) == 0 {
			return nil
		}
		for _, s := range pids {
			var pid int
			if _, err := fmt.Sscan(s, &pid); err == nil && pid > 1 && pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("processes %v still run in %s: %w", pids, name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func netnsExists(ctx context.Context, name string) bool {
	out, err := ip(ctx, "netns", "list")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == name {
			return true
		}
	}
	return false
}

func linkExists(ctx context.Context, name string) bool {
	_, err := ip(ctx, "link", "show", "dev", name)
	return err == nil
}

// ip runs the ip command and returns its output; the error carries stderr.
func ip(ctx context.Context, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func writeSysctl(key, value string) error {
	path := filepath.Join("/proc/sys", key)
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("setting %s: %w", key, err)
	}
	return nil
}
