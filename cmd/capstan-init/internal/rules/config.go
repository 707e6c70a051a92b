// Package rules renders the traffic capture rules of a Capstan sidecar as
// iptables-restore input. Rendering is a pure function of the Config;
// capstan-init's main applies the result.
package rules

import (
	"errors"
	"fmt"
	"net/netip"
)

// Family is the IP family a rule set is for.
type Family string

// IP families, each restored by its own program.
const (
	IPv4 Family = "ipv4"
	IPv6 Family = "ipv6"
)

// Proxy ports that are never captured inbound, whatever the configuration
// says: Envoy's admin, health and Prometheus ports.
var alwaysExcludedInbound = []uint16{15000, 15021, 15090}

// Config is what the rules depend on. Each field is set by the flag named in
// its comment.
type Config struct {
	// ProxyUID (--proxy-uid) and ProxyGID (--proxy-gid) own the proxy's
	// traffic, which is never captured.
	ProxyUID, ProxyGID uint32
	// InboundCapturePort (--inbound-capture-port) receives captured inbound TCP.
	InboundCapturePort uint16
	// OutboundCapturePort (--outbound-capture-port) receives captured outbound TCP.
	OutboundCapturePort uint16
	// ExcludeInboundPorts (--exclude-inbound-ports) are local ports not captured inbound,
	// on top of 15000, 15021 and 15090.
	ExcludeInboundPorts []uint16
	// ExcludeOutboundPorts (--exclude-outbound-ports) are destination ports not captured outbound.
	ExcludeOutboundPorts []uint16
	// ExcludeOutboundIPRanges (--exclude-outbound-ip-ranges) are destinations not captured outbound.
	ExcludeOutboundIPRanges []netip.Prefix
}

// Validate reports every setting that would give broken or dangerous rules.
func (c Config) Validate() error {
	var errs []error
	if c.ProxyUID == 0 {
		errs = append(errs, errors.New("--proxy-uid: 0 would exempt every root process from capture"))
	}
	if c.ProxyGID == 0 {
		errs = append(errs, errors.New("--proxy-gid: 0 would exempt every root-group process from capture"))
	}
	if c.InboundCapturePort == 0 {
		errs = append(errs, errors.New("--inbound-capture-port: must be a port number (1-65535)"))
	}
	if c.OutboundCapturePort == 0 {
		errs = append(errs, errors.New("--outbound-capture-port: must be a port number (1-65535)"))
	}
	if c.InboundCapturePort != 0 && c.InboundCapturePort == c.OutboundCapturePort {
		errs = append(errs, fmt.Errorf("--inbound-capture-port and --outbound-capture-port are both %d", c.InboundCapturePort))
	}
	for _, p := range c.ExcludeOutboundIPRanges {
		if !p.IsValid() || p.Masked() != p {
			errs = append(errs, fmt.Errorf("--exclude-outbound-ip-ranges: %s is not a CIDR", p))
		}
	}
	for _, lists := range []struct {
		flag  string
		ports []uint16
	}{{"--exclude-inbound-ports", c.ExcludeInboundPorts}, {"--exclude-outbound-ports", c.ExcludeOutboundPorts}} {
		for _, p := range lists.ports {
			if p == 0 {
				errs = append(errs, fmt.Errorf("%s: 0 is not a port number", lists.flag))
			}
		}
	}
	return errors.Join(errs...)
}
