package rules

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Chains of the nat table that Render creates.
const (
	ChainInbound    = "CAPSTAN_INBOUND"
	ChainInRedirect = "CAPSTAN_IN_REDIRECT"
	ChainOutput     = "CAPSTAN_OUTPUT"
	ChainRedirect   = "CAPSTAN_REDIRECT"
)

// loopback addresses per family: the host itself, and the source the proxy
// binds when it forwards inbound traffic to the application's pod IP.
var loopback = map[Family]struct{ host, inboundSource string }{
	IPv4: {"127.0.0.1/32", "127.0.0.6/32"},
	IPv6: {"::1/128", "::6/128"},
}

// Render returns the iptables-restore (IPv4) or ip6tables-restore (IPv6)
// input that replaces the pod's nat table with the capture rules:
//
//   - inbound: TCP arriving for any local port goes to the inbound capture
//     port, except the proxy's own ports and the excluded inbound ports;
//   - outbound: TCP the pod sends goes to the outbound capture port, except
//     the proxy's own traffic (UID or GID), traffic to loopback, and the
//     excluded destination ports and CIDRs of this family. The proxy's
//     traffic to its own pod over loopback is sent to the inbound capture
//     port, so that a pod calling itself through the mesh still gets inbound
//     policy; traffic the proxy forwards from 127.0.0.6 (::6) is not.
//
// The output is deterministic: lists are sorted and de-duplicated.
func Render(cfg Config, family Family) (string, error) {
	lo, ok := loopback[family]
	if !ok {
		return "", fmt.Errorf("unknown IP family %q", family)
	}
	if err := cfg.Validate(); err != nil {
		return "", err
	}
	var w writer
	w.line("# capstan-init: %s capture rules (%s input)", family, restoreProgram(family))
	w.line("*nat")
	for _, c := range []string{"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"} {
		w.line(":%s ACCEPT [0:0]", c)
	}
	for _, c := range []string{ChainInbound, ChainInRedirect, ChainOutput, ChainRedirect} {
		w.line(":%s - [0:0]", c)
	}
	w.line("-A PREROUTING -p tcp -j %s", ChainInbound)
	w.line("-A OUTPUT -p tcp -j %s", ChainOutput)
	inbound(&w, cfg)
	outbound(&w, cfg, family, lo.host, lo.inboundSource)
	w.line("COMMIT")
	return w.String(), nil
}

func inbound(w *writer, cfg Config) {
	for _, p := range sortedPorts(alwaysExcludedInbound, cfg.ExcludeInboundPorts) {
		w.line("-A %s -p tcp --dport %d -j RETURN", ChainInbound, p)
	}
	w.line("-A %s -p tcp -j %s", ChainInbound, ChainInRedirect)
	w.line("-A %s -p tcp -j REDIRECT --to-ports %d", ChainInRedirect, cfg.InboundCapturePort)
}

func outbound(w *writer, cfg Config, family Family, host, inboundSource string) {
	w.line("-A %s -s %s -o lo -j RETURN", ChainOutput, inboundSource)
	for _, owner := range []string{"--uid-owner " + u32(cfg.ProxyUID), "--gid-owner " + u32(cfg.ProxyGID)} {
		neg := strings.Replace(owner, "--", "! --", 1)
		w.line("-A %s ! -d %s -o lo -m owner %s -j %s", ChainOutput, host, owner, ChainInRedirect)
		w.line("-A %s -o lo -m owner %s -j RETURN", ChainOutput, neg)
		w.line("-A %s -m owner %s -j RETURN", ChainOutput, owner)
	}
	w.line("-A %s -d %s -j RETURN", ChainOutput, host)
	for _, p := range sortedPorts(cfg.ExcludeOutboundPorts) {
		w.line("-A %s -p tcp --dport %d -j RETURN", ChainOutput, p)
	}
	for _, p := range prefixesOf(cfg.ExcludeOutboundIPRanges, family) {
		w.line("-A %s -d %s -j RETURN", ChainOutput, p)
	}
	w.line("-A %s -j %s", ChainOutput, ChainRedirect)
	w.line("-A %s -p tcp -j REDIRECT --to-ports %d", ChainRedirect, cfg.OutboundCapturePort)
}

func sortedPorts(lists ...[]uint16) []uint16 {
	out := slices.Concat(lists...)
	slices.Sort(out)
	return slices.Compact(out)
}

// prefixesOf returns the prefixes of one family, sorted and de-duplicated.
func prefixesOf(ps []netip.Prefix, family Family) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if p.Addr().Is4() == (family == IPv4) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(out)
}

func restoreProgram(f Family) string {
	if f == IPv6 {
		return "ip6tables-restore"
	}
	return "iptables-restore"
}

func u32(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

type writer struct{ strings.Builder }

func (w *writer) line(format string, args ...any) {
	fmt.Fprintf(&w.Builder, format, args...)
	w.WriteByte('\n')
}
