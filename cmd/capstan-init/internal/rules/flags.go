package rules

import (
	"flag"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Options are capstan-init's command line: the rule Config and how to apply it.
type Options struct {
	Config
	// IPv6 (--ipv6) forces the IPv6 rules; they are also installed when a
	// pod IP (--pod-ips) is IPv6.
	IPv6   bool
	PodIPs []netip.Addr
	// DryRun (--dry-run) prints the rules without applying them.
	DryRun bool
	// IPTablesRestore and IP6TablesRestore are the programs that apply them.
	IPTablesRestore, IP6TablesRestore string
}

// ParseFlags parses capstan-init's arguments (without the program name).
// Usage and flag errors are also written to output.
func ParseFlags(args []string, output io.Writer) (Options, error) {
	var o Options
	fs := flag.NewFlagSet("capstan-init", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.Usage = func() {
		_, _ = fmt.Fprintln(fs.Output(), "Usage: capstan-init [flags]\n\nInstalls the Capstan sidecar's traffic capture rules in the pod's network namespace.\n\nFlags:")
		fs.PrintDefaults()
	}
	uid := fs.Uint("proxy-uid", 1337, "UID of the proxy, whose traffic is never captured")
	gid := fs.Int64("proxy-gid", -1, "GID of the proxy, whose traffic is never captured (default: --proxy-uid)")
	in := portFlag(fs, "inbound-capture-port", 15006, "port that receives captured inbound TCP")
	out := portFlag(fs, "outbound-capture-port", 15001, "port that receives captured outbound TCP")
	fs.Var((*portList)(&o.ExcludeInboundPorts), "exclude-inbound-ports", "comma-separated local ports not captured inbound (15000, 15021 and 15090 never are)")
	fs.Var((*portList)(&o.ExcludeOutboundPorts), "exclude-outbound-ports", "comma-separated destination ports not captured outbound")
	fs.Var((*prefixList)(&o.ExcludeOutboundIPRanges), "exclude-outbound-ip-ranges", "comma-separated destination CIDRs not captured outbound")
	fs.Var((*addrList)(&o.PodIPs), "pod-ips", "comma-separated pod IPs; an IPv6 one turns the IPv6 rules on")
	fs.BoolVar(&o.IPv6, "ipv6", false, "install the IPv6 rules too")
	fs.BoolVar(&o.DryRun, "dry-run", false, "print the rules instead of applying them")
	fs.StringVar(&o.IPTablesRestore, "iptables-restore", "iptables-restore", "program that applies the IPv4 rules")
	fs.StringVar(&o.IP6TablesRestore, "ip6tables-restore", "ip6tables-restore", "program that applies the IPv6 rules")
	if err := fs.Parse(args); err != nil {
		return Options{}, err
	}
	if fs.NArg() > 0 {
		return Options{}, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *uid > 1<<32-1 {
		return Options{}, fmt.Errorf("--proxy-uid: %d is not a UID", *uid)
	}
	o.ProxyUID = uint32(*uid)
	switch {
	case *gid == -1:
		o.ProxyGID = o.ProxyUID
	case *gid < 0 || *gid > 1<<32-1:
		return Options{}, fmt.Errorf("--proxy-gid: %d is not a GID", *gid)
	default:
		o.ProxyGID = uint32(*gid)
	}
	o.InboundCapturePort, o.OutboundCapturePort = uint16(*in), uint16(*out)
	if err := o.Validate(); err != nil {
		return Options{}, err
	}
	return o, nil
}

// Families are the IP families whose rules are installed: IPv4 always, IPv6
// when asked for or when the pod has an IPv6 address.
func (o Options) Families() []Family {
	if o.IPv6 || slices.ContainsFunc(o.PodIPs, func(a netip.Addr) bool { return a.Is6() && !a.Is4In6() }) {
		return []Family{IPv4, IPv6}
	}
	return []Family{IPv4}
}

// Step is one program run with its input.
type Step struct {
	Program string
	Input   string
}

// Plan renders the rules of every family, each with the program that applies it.
func Plan(o Options) ([]Step, error) {
	var steps []Step
	for _, f := range o.Families() {
		in, err := Render(o.Config, f)
		if err != nil {
			return nil, err
		}
		prog := o.IPTablesRestore
		if f == IPv6 {
			prog = o.IP6TablesRestore
		}
		steps = append(steps, Step{Program: prog, Input: in})
	}
	return steps, nil
}

// splitItems splits a comma-separated flag value, trimming spaces and dropping empty items.
func splitItems(v string) []string {
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a port number", s)
	}
	return uint16(n), nil
}

type port uint16

func portFlag(fs *flag.FlagSet, name string, def uint16, usage string) *port {
	p := port(def)
	fs.Var(&p, name, usage)
	return &p
}

func (p *port) String() string { return strconv.FormatUint(uint64(*p), 10) }
func (p *port) Set(s string) error {
	n, err := parsePort(s)
	*p = port(n)
	return err
}

type portList []uint16

func (l *portList) String() string {
	if l == nil {
		return ""
	}
	s := make([]string, len(*l))
	for i, p := range *l {
		s[i] = strconv.FormatUint(uint64(p), 10)
	}
	return strings.Join(s, ",")
}

func (l *portList) Set(v string) error {
	*l = nil
	for _, item := range splitItems(v) {
		p, err := parsePort(item)
		if err != nil {
			return err
		}
		*l = append(*l, p)
	}
	return nil
}

type prefixList []netip.Prefix

func (l *prefixList) String() string {
	if l == nil {
		return ""
	}
	s := make([]string, len(*l))
	for i, p := range *l {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func (l *prefixList) Set(v string) error {
	*l = nil
	for _, item := range splitItems(v) {
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return fmt.Errorf("%q is not a CIDR", item)
		}
		if p.Masked() != p {
			return fmt.Errorf("%q is not a CIDR: host bits are set (did you mean %s?)", item, p.Masked())
		}
		*l = append(*l, p)
	}
	return nil
}

type addrList []netip.Addr

func (l *addrList) String() string {
	if l == nil {
		return ""
	}
	s := make([]string, len(*l))
	for i, a := range *l {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

func (l *addrList) Set(v string) error {
	*l = nil
	for _, item := range splitItems(v) {
		a, err := netip.ParseAddr(item)
		if err != nil {
			return fmt.Errorf("%q is not an IP address", item)
		}
		*l = append(*l, a)
	}
	return nil
}

// ErrHelp is returned by ParseFlags for -h and --help.
var ErrHelp = flag.ErrHelp
