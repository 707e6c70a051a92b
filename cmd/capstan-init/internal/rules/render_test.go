package rules

import (
	"net/netip"
	"strings"
	"testing"
)

func validConfig() Config {
	return Config{ProxyUID: 1337, ProxyGID: 1337, InboundCapturePort: 15006, OutboundCapturePort: 15001}
}

func TestRenderRefuses(t *testing.T) {
	for name, tc := range map[string]struct {
		mutate func(*Config)
		family Family
		want   string
	}{
		"unknown family":    {func(*Config) {}, "ipx", `unknown IP family "ipx"`},
		"zero excluded":     {func(c *Config) { c.ExcludeOutboundPorts = []uint16{0} }, IPv4, "--exclude-outbound-ports: 0 is not a port number"},
		"zero capture":      {func(c *Config) { c.InboundCapturePort = 0 }, IPv4, "--inbound-capture-port: must be a port number (1-65535)"},
		"unmasked prefix":   {func(c *Config) { c.ExcludeOutboundIPRanges = []netip.Prefix{netip.MustParsePrefix("10.0.0.1/8")} }, IPv4, "--exclude-outbound-ip-ranges: 10.0.0.1/8 is not a CIDR"},
		"root gid":          {func(c *Config) { c.ProxyGID = 0 }, IPv6, "--proxy-gid: 0 would exempt every root-group process from capture"},
		"same capture port": {func(c *Config) { c.OutboundCapturePort = 15006 }, IPv4, "--inbound-capture-port and --outbound-capture-port are both 15006"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := validConfig()
			tc.mutate(&cfg)
			_, err := Render(cfg, tc.family)
			if err == nil || err.Error() != tc.want {
				t.Errorf("Render error = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestRenderIsDeterministic renders the same exclusions in two orders.
func TestRenderIsDeterministic(t *testing.T) {
	a, b := validConfig(), validConfig()
	a.ExcludeInboundPorts = []uint16{9090, 80, 9090}
	b.ExcludeInboundPorts = []uint16{80, 9090}
	a.ExcludeOutboundIPRanges = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("1.0.0.0/8")}
	b.ExcludeOutboundIPRanges = []netip.Prefix{netip.MustParsePrefix("1.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("1.0.0.0/8")}
	ra, _ := Render(a, IPv4)
	rb, _ := Render(b, IPv4)
	if ra != rb {
		t.Errorf("order changed the rules:\n%s\n---\n%s", ra, rb)
	}
	if strings.Count(ra, "--dport 9090") != 1 {
		t.Errorf("duplicate port rendered twice:\n%s", ra)
	}
}
