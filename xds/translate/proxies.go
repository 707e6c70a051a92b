package translate

import (
	"cmp"
	"maps"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/capstanmesh/capstan/api/annotations"
	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/xds/ir"
)

// translateProxies adds one sidecar proxy per injected pod, and one proxyless
// gRPC client per pod annotated capstan.dev/generator: grpc, that has an IP
// and is not being deleted. The pod need not be Running yet: its sidecar asks
// for config while the pod starts.
func (t *translator) translateProxies() {
	t.servicesByNS = map[string][]*serviceEntry{}
	for _, e := range t.services {
		t.servicesByNS[e.k8s.Namespace] = append(t.servicesByNS[e.k8s.Namespace], e)
	}
	for i := range t.in.Pods {
		pod := &t.in.Pods[i]
		if pod.Status.PodIP == "" || pod.DeletionTimestamp != nil {
			continue
		}
		if isInjected(pod) {
			t.proxies = append(t.proxies, t.newProxy(pod))
		}
		if isProxylessGRPC(pod) {
			t.proxies = append(t.proxies, t.newGRPCProxy(pod))
		}
	}
}

func isProxylessGRPC(pod *corev1.Pod) bool {
	return pod.Annotations[meshv1alpha1.AnnotationGenerator] == meshv1alpha1.GeneratorGRPC
}

// newGRPCProxy is the proxyless gRPC client of a pod: it has no inbound
// ports (it serves nothing through Capstan) and its node ID starts with grpc~.
func (t *translator) newGRPCProxy(pod *corev1.Pod) *ir.Proxy {
	return t.podProxy(pod, ir.ProxyGRPC, ir.GRPCNodeID(pod.Status.PodIP, pod.Name, pod.Namespace))
}

func (t *translator) newProxy(pod *corev1.Pod) *ir.Proxy {
	p := t.podProxy(pod, ir.ProxySidecar, ir.SidecarNodeID(pod.Status.PodIP, pod.Name, pod.Namespace))
	p.Inbound = t.inboundPorts(pod)
	p.AppProbes = appProbes(pod)
	p.Scope = t.scope(pod)
	return p
}

// podProxy is what every kind of proxy of a pod has: its node ID, the pod
// and its identity.
func (t *translator) podProxy(pod *corev1.Pod, kind ir.ProxyKind, id string) *ir.Proxy {
	sa := serviceAccount(pod)
	return &ir.Proxy{
		ID:             id,
		Kind:           kind,
		Name:           pod.Name,
		Namespace:      pod.Namespace,
		IP:             pod.Status.PodIP,
		ServiceAccount: sa,
		Identity:       ir.SpiffeID(t.trustDomain, pod.Namespace, sa),
		Labels:         maps.Clone(pod.Labels),
	}
}

// inboundPorts are the container ports that the services selecting the pod
// target, one per container port, sorted by port.
func (t *translator) inboundPorts(pod *corev1.Pod) []*ir.InboundPort {
	byPort := map[uint32]*ir.InboundPort{}
	for _, e := range t.servicesByNS[pod.Namespace] {
		if !selects(e.k8s.Spec.Selector, pod.Labels) {
			continue
		}
		for i := range e.k8s.Spec.Ports {
			sp := &e.k8s.Spec.Ports[i]
			port, ok := containerPort(pod, sp)
			if !ok || !isTCP(sp.Protocol) {
				continue
			}
			addInbound(byPort, port, portProtocol(sp), e.k8s.Namespace+"/"+e.k8s.Name+":"+strconv.Itoa(int(sp.Port)))
		}
	}
	out := slices.SortedFunc(maps.Values(byPort), func(a, b *ir.InboundPort) int { return cmp.Compare(a.Port, b.Port) })
	for _, in := range out {
		slices.Sort(in.Services)
		in.MTLS = t.peerAuth.mode(pod.Namespace, pod.Labels, in.Port)
	}
	return out
}

// addInbound records that service targets port. Services that disagree on the
// protocol of one container port make it TCP, the one protocol that is safe
// for any traffic.
func addInbound(byPort map[uint32]*ir.InboundPort, port uint32, proto ir.Protocol, service string) {
	in := byPort[port]
	if in == nil {
		byPort[port] = &ir.InboundPort{Port: port, Protocol: proto, Services: []string{service}}
		return
	}
	if in.Protocol != proto {
		in.Protocol = ir.ProtocolTCP
	}
	in.Services = append(in.Services, service)
}

// containerPort resolves a service port to the pod's container port: a numeric
// targetPort, a named one looked up in the pod's containers, or the port
// itself when targetPort is unset. ok is false when a name finds no port.
func containerPort(pod *corev1.Pod, sp *corev1.ServicePort) (uint32, bool) {
	switch {
	case sp.TargetPort.Type == intstr.String:
		return namedContainerPort(pod, sp.TargetPort.StrVal)
	case sp.TargetPort.IntVal != 0:
		return u32(sp.TargetPort.IntVal), true
	default:
		return u32(sp.Port), true
	}
}

// namedContainerPort looks the name up in the app containers and in init
// containers (native sidecars can serve), never in the injected proxy.
func namedContainerPort(pod *corev1.Pod, name string) (uint32, bool) {
	for _, cs := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for _, c := range cs {
			if c.Name == meshv1alpha1.ProxyContainerName {
				continue
			}
			for _, p := range c.Ports {
				if p.Name == name && isTCP(p.Protocol) {
					return u32(p.ContainerPort), true
				}
			}
		}
	}
	return 0, false
}

// appProbes reads the probes the injector rewrote (capstan.dev/original-probes).
// HTTP probes only; a malformed annotation, which only the injector writes,
// yields none, and the kubelet then reports the probes failing.
func appProbes(pod *corev1.Pod) []*ir.AppProbe {
	orig, err := annotations.ParseOriginalProbes(pod)
	if err != nil {
		return nil
	}
	var out []*ir.AppProbe
	for path, probe := range orig {
		get := probe.HTTPGet
		if get == nil || get.Port.IntValue() <= 0 || get.Scheme == corev1.URISchemeHTTPS {
			continue
		}
		target := get.Path
		if target == "" {
			target = "/"
		}
		probe := &ir.AppProbe{Path: path, Port: uint32(get.Port.IntValue()), TargetPath: target}
		for _, h := range get.HTTPHeaders {
			probe.Headers = append(probe.Headers, &ir.Header{Name: h.Name, Value: h.Value})
		}
		out = append(out, probe)
	}
	slices.SortFunc(out, func(a, b *ir.AppProbe) int { return cmp.Compare(a.Path, b.Path) })
	return out
}
