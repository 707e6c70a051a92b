package generate

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/capstanmesh/capstan/xds/ir"
)

// checkDomains applies the rule ValidateAll applies to domains (no NUL, CR or
// LF) without its regular expression, which is the costliest part of
// validating a large route configuration.
func checkDomains(domains []string) error {
	if len(domains) == 0 {
		return errors.New("no domains")
	}
	for _, d := range domains {
		if strings.ContainsAny(d, "\x00\r\n") {
			return fmt.Errorf("domain %q contains a control character", d)
		}
	}
	return nil
}

// plainNames reports whether the names a service's domains are made of are
// plain: ASCII without upper case, ':', NUL, CR or LF. The domains of such
// a service need neither checkDomains nor the case folding and colon test
// of claim — the domains' other parts (IPs, "*.", ":port") are plain too,
// but for the colons of IPv6 addresses, which are bracketed.
func plainNames(s *ir.Service) bool {
	if !plainName(s.FQDN) {
		return false
	}
	return s.Name == "" || s.Namespace == "" || (plainName(s.Name) && plainName(s.Namespace))
}

func plainName(name string) bool {
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c >= utf8.RuneSelf, 'A' <= c && c <= 'Z', c == ':', c == 0, c == '\r', c == '\n':
			return false
		}
	}
	return true
}

// domains are the names a client may use for the service: name (only from
// the proxy's own namespace, as DNS search paths resolve it there),
// name.namespace, name.namespace.svc, the FQDN, "*.<fqdn>" for the pods of a
// headless service, and the cluster IPs, each bare and with ":port". Domains
// already claimed are left out.
func (b *builder) domains(s *service, port uint32, claimed claims) []string {
	d := domainList{b: b, claimed: claimed, port: port, plain: s.plainNames, out: b.mem.domains.slice(b.maxDomains(s))[:0]}
	if s.Name != "" && s.Namespace != "" {
		if s.Namespace == b.proxy.Namespace {
			d.add(s.Name)
		}
		d.add(s.Name, ".", s.Namespace)
		d.add(s.Name, ".", s.Namespace, ".svc")
	}
	d.add(s.FQDN)
	if s.Headless {
		// StatefulSet pods are reached as <pod>.<fqdn>.
		d.add("*.", s.FQDN)
	}
	for _, ip := range s.ips {
		d.addIP(ip)
	}
	return d.out
}

// maxDomains is how many domains the service can have on one port: two per
// host name (hostCount).
func (b *builder) maxDomains(s *service) int { return 2 * b.hostCount(s) }

// hostCount is how many host names domains tries for the service.
func (b *builder) hostCount(s *service) int {
	n := 1 + len(s.ips) // FQDN, IPs
	if s.Name != "" && s.Namespace != "" {
		n += 2 // name.namespace, name.namespace.svc
		if s.Namespace == b.proxy.Namespace {
			n++ // name
		}
	}
	if s.Headless {
		n++ // *.<fqdn>
	}
	return n
}

// domainList collects the domains of one virtual host.
type domainList struct {
	b       *builder
	claimed claims
	port    uint32
	plain   bool // the service's names are plain (plainNames)
	out     []string
}

// add adds the host made of parts, with its ":port" form, unless claimed.
func (d *domainList) add(parts ...string) {
	buf := d.b.scratch[:0]
	for _, p := range parts {
		buf = append(buf, p...)
	}
	d.addHost(buf)
}

// addIP adds an IP as it appears in a Host header (IPv6 bracketed).
func (d *domainList) addIP(ip netip.Addr) {
	buf := d.b.scratch[:0]
	if ip.Is6() {
		buf = append(ip.AppendTo(append(buf, '[')), ']')
	} else {
		buf = ip.AppendTo(buf)
	}
	d.addHost(buf)
}

// addHost adds the host in buf, the builder's scratch. The host and its
// ":port" form are stored as one string.
func (d *domainList) addHost(buf []byte) {
	n := len(buf)
	buf = strconv.AppendUint(append(buf, ':'), uint64(d.port), 10)
	d.b.scratch = buf
	withPort := d.b.mem.text.string(buf)
	// A host claims its ":port" form with it: within one route
	// configuration (one port) "a:port" and "b:port" clash only if a and b do.
	if host := withPort[:n]; d.claim(host) {
		d.out = append(d.out, host, withPort)
	}
}

// claim reports whether no earlier host claimed h, and claims it. Envoy
// compares domains case-insensitively. A name with a colon (not a bracketed
// IPv6 address) is never claimed: it could clash with another's ":port" form.
// Hosts made of plain names are their own key.
func (d *domainList) claim(h string) bool {
	key := h
	if !d.plain {
		if strings.Contains(h, ":") && !strings.HasPrefix(h, "[") {
			return false
		}
		key = strings.ToLower(h)
	}
	if _, taken := d.claimed[key]; taken {
		return false
	}
	d.claimed[key] = struct{}{}
	return true
}

// claims are the hosts (lower case) of the virtual hosts of one route
// configuration so far.
type claims map[string]struct{}
