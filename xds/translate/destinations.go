package translate

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/xds/ir"
)

// resolveDestinations resolves the rule's destinations, dropping (and
// reporting) those whose host, subset or port does not resolve, and
// renormalises the weights of the others to sum to 100.
func (t *translator) resolveDestinations(ns string, route []meshv1alpha1.Destination, field string, st *objectStatus) []*ir.Destination {
	var out []*ir.Destination
	var weights []int64
	for i := range route {
		d := &route[i]
		f := fmt.Sprintf("%s.route[%d]", field, i)
		dst := t.resolveDestination(ns, d.Host, d.Subset, f, st, explicitPort(u32(d.Port)))
		if dst == nil {
			continue
		}
		out = append(out, dst)
		weights = append(weights, int64(weightOf(d)))
	}
	return normaliseWeights(out, weights)
}

// portPicker chooses the destination port of a service.
type portPicker func(svc *ir.Service) (uint32, error)

// resolveDestination resolves host, subset and port; nil (and a ResolvedRefs
// problem naming field) when one of them does not resolve.
func (t *translator) resolveDestination(ns, host, subset, field string, st *objectStatus, pick portPicker) *ir.Destination {
	svc, fqdn := t.lookupHost(host, ns)
	if svc == nil {
		st.unresolvedf(meshv1alpha1.ReasonHostNotFound, "%s.host: host %q (%s) names no Service", field, host, fqdn)
		return nil
	}
	if subset != "" && svc.SubsetByName(subset) == nil {
		st.unresolvedf(meshv1alpha1.ReasonSubsetNotFound, "%s.subset: subset %q not found in DestinationPolicy for %s", field, subset, host)
		return nil
	}
	port, err := pick(svc)
	if err != nil {
		st.unresolvedf(meshv1alpha1.ReasonPortNotFound, "%s.port: %v", field, err)
		return nil
	}
	return &ir.Destination{Service: svc.FQDN, Port: port, Subset: subset}
}

// explicitPort picks the port a destination names, or the service's only port
// when it names none.
func explicitPort(port uint32) portPicker {
	return func(svc *ir.Service) (uint32, error) {
		if port != 0 {
			if svc.PortByNumber(port) == nil {
				return 0, fmt.Errorf("service %s has no port %d (ports: %s)", svc.FQDN, port, portList(svc))
			}
			return port, nil
		}
		return onlyPort(svc)
	}
}

func onlyPort(svc *ir.Service) (uint32, error) {
	switch len(svc.Ports) {
	case 0:
		return 0, fmt.Errorf("service %s has no TCP port", svc.FQDN)
	case 1:
		return svc.Ports[0].Port, nil
	default:
		return 0, fmt.Errorf("service %s has %d ports (%s); a port is required", svc.FQDN, len(svc.Ports), portList(svc))
	}
}

// mirrorPort picks the mirror service's only port, or else its port with the
// number of the rule's first destination.
func mirrorPort(primary uint32) portPicker {
	return func(svc *ir.Service) (uint32, error) {
		if len(svc.Ports) != 1 && svc.PortByNumber(primary) != nil {
			return primary, nil
		}
		port, err := onlyPort(svc)
		if err != nil && len(svc.Ports) > 1 {
			err = fmt.Errorf("service %s has %d ports (%s) and none is %d, the port of the rule's first destination",
				svc.FQDN, len(svc.Ports), portList(svc), primary)
		}
		return port, err
	}
}

func portList(svc *ir.Service) string {
	ports := make([]string, len(svc.Ports))
	for i, p := range svc.Ports {
		ports[i] = strconv.FormatUint(uint64(p.Port), 10)
	}
	return strings.Join(ports, ", ")
}

// resolveMirror resolves a mirror like a route destination; nil when it does
// not resolve (the rule is kept, without mirroring).
func (t *translator) resolveMirror(ns string, m *meshv1alpha1.Mirror, primary uint32, field string, st *objectStatus) *ir.Mirror {
	dst := t.resolveDestination(ns, m.Host, m.Subset, field, st, mirrorPort(primary))
	if dst == nil {
		return nil
	}
	return &ir.Mirror{Destination: *dst, Percent: orDefault(m.Percent, defaultPercent)}
}

// normaliseWeights sets the weights of ds to sum to 100 in proportion to
// weights, by largest remainder (ties to the earlier destination). A single
// destination gets 100. When every remaining weight is 0 no destination would
// receive traffic, and nil is returned so that the rule is dropped.
func normaliseWeights(ds []*ir.Destination, weights []int64) []*ir.Destination {
	if len(ds) == 1 {
		ds[0].Weight = 100
		return ds
	}
	var total int64
	for _, w := range weights {
		total += w
	}
	if total == 0 {
		return nil
	}
	left := int64(100)
	remainders := make([]int64, len(ds))
	for i, w := range weights {
		share := w * 100 / total
		ds[i].Weight = uint32(share)
		remainders[i] = w * 100 % total
		left -= share
	}
	order := make([]int, len(ds))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(remainders[b], remainders[a]) })
	for _, i := range order[:left] {
		ds[i].Weight++
	}
	return ds
}
