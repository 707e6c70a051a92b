package translate

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/xds/ir"
)

// translateEndpoints fills each service's ready endpoints from the
// EndpointSlices labelled with its name. An address of one pod listed by
// several slices appears once, with the union of its ports; pods that share
// an address (host-network pods on one node, on different ports) are
// separate endpoints.
func (t *translator) translateEndpoints() {
	found := map[*ir.Service]map[string]*ir.Endpoint{}
	for _, sl := range sortedSlices(t.in.EndpointSlices) {
		svc := t.sliceService(sl)
		if svc == nil {
			continue
		}
		if found[svc] == nil {
			found[svc] = map[string]*ir.Endpoint{}
		}
		t.addSlice(found[svc], sl)
	}
	for svc, eps := range found {
		svc.Endpoints = slices.SortedFunc(maps.Values(eps), func(a, b *ir.Endpoint) int {
			return cmp.Or(compareAddresses(a.Address, b.Address), cmp.Compare(a.Pod, b.Pod))
		})
		svc.Identities = t.withAliases(identities(svc.Endpoints))
	}
}

func sortedSlices(in []discoveryv1.EndpointSlice) []*discoveryv1.EndpointSlice {
	out := make([]*discoveryv1.EndpointSlice, len(in))
	for i := range in {
		out[i] = &in[i]
	}
	slices.SortFunc(out, func(a, b *discoveryv1.EndpointSlice) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// sliceService is the service a slice belongs to, or nil. Slices of FQDN
// addresses are skipped: the model holds IP endpoints only.
func (t *translator) sliceService(sl *discoveryv1.EndpointSlice) *ir.Service {
	name := sl.Labels[discoveryv1.LabelServiceName]
	if name == "" || sl.AddressType == discoveryv1.AddressTypeFQDN {
		return nil
	}
	if e := t.byFQDN[ir.ServiceFQDN(name, sl.Namespace)]; e != nil {
		return e.ir
	}
	return nil
}

func (t *translator) addSlice(eps map[string]*ir.Endpoint, sl *discoveryv1.EndpointSlice) {
	ports := slicePorts(sl.Ports)
	for i := range sl.Endpoints {
		ep := &sl.Endpoints[i]
		if !isReady(ep) {
			continue
		}
		for _, addr := range ep.Addresses {
			key := endpointKey(addr, sl.Namespace, ep.TargetRef)
			if prev, ok := eps[key]; ok {
				mergePorts(prev.Ports, ports)
				continue
			}
			eps[key] = t.newEndpoint(addr, sl.Namespace, ep, ports)
		}
	}
}

// endpointKey identifies an endpoint: its address and the pod behind it, if any.
func endpointKey(addr, ns string, ref *corev1.ObjectReference) string {
	if ref == nil || ref.Kind != "Pod" {
		return addr
	}
	return addr + "/" + cmp.Or(ref.Namespace, ns) + "/" + ref.Name
}

// mergePorts adds the ports dst lacks; the first slice to name a port wins.
func mergePorts(dst, src map[string]uint32) {
	for name, port := range src {
		if _, ok := dst[name]; !ok {
			dst[name] = port
		}
	}
}

// isReady: a nil ready condition means ready, as the EndpointSlice API says.
func isReady(ep *discoveryv1.Endpoint) bool {
	return ep.Conditions.Ready == nil || *ep.Conditions.Ready
}

func slicePorts(ports []discoveryv1.EndpointPort) map[string]uint32 {
	out := map[string]uint32{}
	for _, p := range ports {
		if p.Port == nil {
			continue
		}
		name := ""
		if p.Name != nil {
			name = *p.Name
		}
		out[name] = u32(*p.Port)
	}
	return out
}

func (t *translator) newEndpoint(addr, ns string, ep *discoveryv1.Endpoint, ports map[string]uint32) *ir.Endpoint {
	e := &ir.Endpoint{Address: addr, Ports: maps.Clone(ports)}
	if ep.Zone != nil {
		e.Zone = *ep.Zone
	}
	ref := ep.TargetRef
	if ref == nil || ref.Kind != "Pod" {
		return e
	}
	podNS := cmp.Or(ref.Namespace, ns)
	e.Pod = podNS + "/" + ref.Name
	if pod := t.pods[e.Pod]; pod != nil {
		e.Labels = maps.Clone(pod.Labels)
		if isInjected(pod) {
			e.Identity = ir.SpiffeID(t.trustDomain, pod.Namespace, serviceAccount(pod))
		}
	}
	return e
}

// isInjected reports whether the injector has added a sidecar to the pod.
func isInjected(pod *corev1.Pod) bool {
	_, ok := pod.Annotations[meshv1alpha1.AnnotationStatus]
	return ok
}

func serviceAccount(pod *corev1.Pod) string {
	return cmp.Or(pod.Spec.ServiceAccountName, "default")
}

// identities are the sorted, unique identities of the endpoints.
func identities(eps []*ir.Endpoint) []string {
	var out []string
	for _, e := range eps {
		if e.Identity != "" {
			out = append(out, e.Identity)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// withAliases adds, for each SPIFFE ID of the mesh's trust domain, the same
// ID under every trust domain alias: during a trust-domain change a peer may
// still present (or already present) a certificate of the other domain.
// The result is sorted.
func (t *translator) withAliases(ids []string) []string {
	if len(t.trustDomainAliases) == 0 {
		return ids
	}
	prefix := "spiffe://" + t.trustDomain + "/"
	out := slices.Clone(ids)
	for _, id := range ids {
		rest, ok := strings.CutPrefix(id, prefix)
		if !ok {
			continue
		}
		for _, alias := range t.trustDomainAliases {
			if alias != t.trustDomain {
				out = append(out, "spiffe://"+alias+"/"+rest)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// compareAddresses orders IP addresses numerically (IPv4 before IPv6), and
// anything that does not parse after them, as text.
func compareAddresses(a, b string) int {
	ia, errA := netip.ParseAddr(a)
	ib, errB := netip.ParseAddr(b)
	switch {
	case errA == nil && errB == nil:
		return ia.Compare(ib)
	case errA == nil:
		return -1
	case errB == nil:
		return 1
	default:
		return cmp.Compare(a, b)
	}
}
