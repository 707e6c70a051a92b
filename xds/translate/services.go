package translate

import (
	"cmp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/capstanmesh/capstan/xds/ir"
)

// translateServices adds every Service but ExternalName ones to the model,
// sorted by FQDN. Only TCP ports are kept: the sidecar captures TCP alone.
func (t *translator) translateServices() {
	for i := range t.in.Services {
		k := &t.in.Services[i]
		if k.Spec.Type == corev1.ServiceTypeExternalName {
			continue
		}
		e := &serviceEntry{k8s: k, ir: newService(k)}
		if _, dup := t.byFQDN[e.ir.FQDN]; dup {
			continue
		}
		t.byFQDN[e.ir.FQDN] = e
		t.services = append(t.services, e)
	}
	slices.SortFunc(t.services, func(a, b *serviceEntry) int { return cmp.Compare(a.ir.FQDN, b.ir.FQDN) })
}

func newService(k *corev1.Service) *ir.Service {
	s := &ir.Service{
		Name:      k.Name,
		Namespace: k.Namespace,
		FQDN:      ir.ServiceFQDN(k.Name, k.Namespace),
		Ports:     servicePorts(k.Spec.Ports),
	}
	s.ClusterIPs, s.Headless = clusterIPs(&k.Spec)
	return s
}

// clusterIPs returns the service's virtual IPs, and whether it is headless.
func clusterIPs(spec *corev1.ServiceSpec) ([]string, bool) {
	if spec.ClusterIP == corev1.ClusterIPNone {
		return nil, true
	}
	if len(spec.ClusterIPs) > 0 {
		return slices.Clone(spec.ClusterIPs), false
	}
	if spec.ClusterIP != "" {
		return []string{spec.ClusterIP}, false
	}
	return nil, false
}

// servicePorts converts the TCP ports, sorted by port number.
func servicePorts(ports []corev1.ServicePort) []*ir.ServicePort {
	out := []*ir.ServicePort{}
	for i := range ports {
		p := &ports[i]
		if !isTCP(p.Protocol) {
			continue
		}
		out = append(out, &ir.ServicePort{
			Name:       p.Name,
			Port:       u32(p.Port),
			Protocol:   portProtocol(p),
			TargetPort: numericTargetPort(p),
		})
	}
	slices.SortFunc(out, func(a, b *ir.ServicePort) int { return cmp.Compare(a.Port, b.Port) })
	return out
}

func isTCP(p corev1.Protocol) bool { return p == "" || p == corev1.ProtocolTCP }

// numericTargetPort is the target port number; the port itself when targetPort
// is unset; 0 when targetPort names a container port.
func numericTargetPort(p *corev1.ServicePort) uint32 {
	switch {
	case p.TargetPort.Type == intstr.String:
		return 0
	case p.TargetPort.IntVal != 0:
		return u32(p.TargetPort.IntVal)
	default:
		return u32(p.Port)
	}
}

// portProtocol is the port's application protocol: a known appProtocol wins,
// then the Istio-style name prefix ("http", "http-web", "grpc-api", ...), and
// anything else is TCP (opaque bytes, never parsed as HTTP).
func portProtocol(p *corev1.ServicePort) ir.Protocol {
	if p.AppProtocol != nil {
		if proto, ok := appProtocols[strings.ToLower(*p.AppProtocol)]; ok {
			return proto
		}
	}
	return protocolFromName(p.Name)
}

// appProtocols maps the appProtocol values Capstan recognises.
var appProtocols = map[string]ir.Protocol{
	"http":              ir.ProtocolHTTP,
	"kubernetes.io/ws":  ir.ProtocolHTTP,
	"grpc-web":          ir.ProtocolHTTP,
	"http2":             ir.ProtocolHTTP2,
	"h2c":               ir.ProtocolHTTP2,
	"kubernetes.io/h2c": ir.ProtocolHTTP2,
	"grpc":              ir.ProtocolGRPC,
	"tcp":               ir.ProtocolTCP,
	"tls":               ir.ProtocolTCP,
	"https":             ir.ProtocolTCP,
	"kubernetes.io/wss": ir.ProtocolTCP,
}

// namePrefixes maps the part of a port name before the first '-'.
var namePrefixes = map[string]ir.Protocol{
	"http":  ir.ProtocolHTTP,
	"http2": ir.ProtocolHTTP2,
	"grpc":  ir.ProtocolGRPC,
	"tcp":   ir.ProtocolTCP,
}

func protocolFromName(name string) ir.Protocol {
	name = strings.ToLower(name)
	if name == "grpc-web" || strings.HasPrefix(name, "grpc-web-") {
		return ir.ProtocolHTTP
	}
	prefix, _, _ := strings.Cut(name, "-")
	if proto, ok := namePrefixes[prefix]; ok {
		return proto
	}
	return ir.ProtocolTCP
}

// u32 converts a non-negative API integer; negative values (which validation
// rejects) become 0.
func u32(v int32) uint32 {
	if v < 0 {
		return 0
	}
	return uint32(v)
}
