package inject

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// Everything in the address space of each family, for the exclusion checks.
var (
	allIPv4 = netip.MustParsePrefix("0.0.0.0/0")
	allIPv6 = netip.MustParsePrefix("::/0")
)

// maxPort is the highest TCP port; a port list with every port from 1 to it
// excludes them all.
const maxPort = 65535

// maxQuotedValue bounds how much of an annotation value an opt-out message
// repeats: admission warnings should stay short.
const maxQuotedValue = 60

// OptOuts describes each way pod's capstan.dev/exclude-* annotations take all
// of its inbound or all of its outbound traffic out of capture, so that the
// sidecar (and with it mTLS and mesh policy) is bypassed although the pod is
// injected. They are allowed, and reported: the admission webhook returns
// them as warnings and the operator records them on the pod and counts them
// in Mesh.status. Invalid annotations count for nothing here (Inject refuses
// them). It returns nil when nothing is excluded wholesale.
//
//   - outbound: capstan.dev/exclude-outbound-ip-ranges covering every IPv4
//     or every IPv6 address (0.0.0.0/0, or 0.0.0.0/1 with 128.0.0.0/1, …),
//     or capstan.dev/exclude-outbound-ports listing every port;
//   - inbound: capstan.dev/exclude-inbound-ports listing every TCP port the
//     pod's containers declare (when they declare at least one), or every port.
func OptOuts(pod *corev1.Pod) []string {
	if pod == nil {
		return nil
	}
	ann := pod.Annotations
	var out []string
	if prefixes, err := parseCIDRs(ann, meshv1alpha1.AnnotationExcludeOutboundIPRanges); err == nil {
		for _, family := range []struct {
			all  netip.Prefix
			name string
		}{{allIPv4, "IPv4"}, {allIPv6, "IPv6"}} {
			if covers(prefixes, family.all) {
				out = append(out, optOutMessage(ann, meshv1alpha1.AnnotationExcludeOutboundIPRanges,
					"excludes every "+family.name+" destination from capture: the pod's outbound "+family.name+" traffic"))
			}
		}
	}
	if ports, err := parsePorts(ann, meshv1alpha1.AnnotationExcludeOutboundPorts); err == nil && len(ports) == maxPort {
		out = append(out, optOutMessage(ann, meshv1alpha1.AnnotationExcludeOutboundPorts,
			"excludes every destination port from capture: the pod's outbound traffic"))
	}
	if ports, err := parsePorts(ann, meshv1alpha1.AnnotationExcludeInboundPorts); err == nil {
		declared := declaredTCPPorts(pod)
		switch {
		case len(ports) == maxPort:
			out = append(out, optOutMessage(ann, meshv1alpha1.AnnotationExcludeInboundPorts,
				"excludes every port from capture: the pod's inbound traffic"))
		case len(declared) > 0 && isSubset(declared, ports):
			out = append(out, optOutMessage(ann, meshv1alpha1.AnnotationExcludeInboundPorts,
				"excludes every port the pod's containers declare ("+joinPorts(declared)+") from capture: the pod's inbound traffic"))
		}
	}
	return out
}

func optOutMessage(ann map[string]string, name, what string) string {
	v := ann[name]
	if len(v) > maxQuotedValue {
		v = v[:maxQuotedValue] + "…"
	}
	return fmt.Sprintf("annotation %s %q %s bypasses the sidecar (no mTLS, no mesh policy)", name, v, what)
}

// declaredTCPPorts returns the sorted TCP container ports of the pod's
// containers and native sidecars, without duplicates.
func declaredTCPPorts(pod *corev1.Pod) []int32 {
	var ports []int32
	add := func(c *corev1.Container) {
		for _, p := range c.Ports {
			if p.Protocol == "" || p.Protocol == corev1.ProtocolTCP {
				ports = append(ports, p.ContainerPort)
			}
		}
	}
	for i := range pod.Spec.Containers {
		add(&pod.Spec.Containers[i])
	}
	for i := range pod.Spec.InitContainers {
		if c := &pod.Spec.InitContainers[i]; c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			add(c)
		}
	}
	slices.Sort(ports)
	return slices.Compact(ports)
}

// isSubset reports whether every element of sorted a is in sorted b.
func isSubset(a, b []int32) bool {
	for _, v := range a {
		if _, found := slices.BinarySearch(b, v); !found {
			return false
		}
	}
	return true
}

// covers reports whether the union of prefixes contains every address of p:
// one prefix contains p, or p's two halves are each covered. It only splits
// p while some prefix lies strictly inside it, so it ends after at most
// len(prefixes) × p's address length splits.
func covers(prefixes []netip.Prefix, p netip.Prefix) bool {
	inside := false
	for _, q := range prefixes {
		if q.Addr().Is4() != p.Addr().Is4() {
			continue
		}
		if q.Bits() <= p.Bits() && q.Contains(p.Addr()) {
			return true
		}
		if q.Bits() > p.Bits() && p.Contains(q.Addr()) {
			inside = true
		}
	}
	if !inside {
		return false
	}
	lo, hi := halves(p)
	return covers(prefixes, lo) && covers(prefixes, hi)
}

// halves splits p (not a single address) into its lower and upper halves.
func halves(p netip.Prefix) (netip.Prefix, netip.Prefix) {
	bits := p.Bits() + 1
	lo := netip.PrefixFrom(p.Addr(), bits)
	b := p.Addr().AsSlice()
	b[p.Bits()/8] |= 0x80 >> (p.Bits() % 8)
	upper, _ := netip.AddrFromSlice(b)
	return lo, netip.PrefixFrom(upper, bits)
}

// OptOutSummary joins OptOuts for an Event or a log line.
func OptOutSummary(optOuts []string) string { return strings.Join(optOuts, "; ") }
