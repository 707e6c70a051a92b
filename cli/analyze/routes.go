package analyze

import (
	"cmp"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/labels"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/xds/ir"
)

// hostRef is a host or destination written in a MeshRoute, with its field.
type hostRef struct {
	field, host, subset string
}

// routeHosts lists the hosts of mr's spec.hosts, destinations and mirrors.
func routeHosts(mr *meshv1alpha1.MeshRoute) []hostRef {
	var out []hostRef
	for i, h := range mr.Spec.Hosts {
		out = append(out, hostRef{field: fmt.Sprintf("spec.hosts[%d]", i), host: h})
	}
	for i := range mr.Spec.HTTP {
		rule := &mr.Spec.HTTP[i]
		for j, d := range rule.Route {
			out = append(out, hostRef{field: fmt.Sprintf("spec.http[%d].route[%d]", i, j), host: d.Host, subset: d.Subset})
		}
		if m := rule.Mirror; m != nil {
			out = append(out, hostRef{field: fmt.Sprintf("spec.http[%d].mirror", i), host: m.Host, subset: m.Subset})
		}
	}
	return out
}

// unknownHostsAndSubsets: a MeshRoute host or destination that is no
// Service (CAP005), and a subset no DestinationPolicy of the host defines
// (CAP006). The translator drops such a destination and shares its weight
// among the others; the route says so in its ResolvedRefs condition.
func unknownHostsAndSubsets(w *world) []Finding {
	var out []Finding
	for i := range w.in.MeshRoutes {
		mr := &w.in.MeshRoutes[i]
		ref := ObjectRef{Kind: KindMeshRoute, Namespace: mr.Namespace, Name: mr.Name}
		for _, h := range routeHosts(mr) {
			fqdn := ir.ResolveHost(h.host, mr.Namespace)
			switch {
			case w.services[fqdn] == nil:
				out = append(out, Finding{Code: CodeUnknownHost, Severity: SeverityError, Object: ref,
					Message: fmt.Sprintf("%s: host %q (%s) names no Service: the route ignores it (a destination's weight goes to the others); "+
						"the route's ResolvedRefs condition is False, reason HostNotFound", h.field, h.host, fqdn),
					Fix: "create the Service, or correct the host: a Service name of the route's namespace, name.namespace, or its FQDN"})
			case h.subset != "" && !w.hasSubset(fqdn, h.subset):
				out = append(out, Finding{Code: CodeUnknownSubset, Severity: SeverityError, Object: ref,
					Message: fmt.Sprintf("%s: subset %q of %s is defined by no DestinationPolicy: the route drops that destination and "+
						"its weight goes to the others; the route's ResolvedRefs condition is False, reason SubsetNotFound", h.field, h.subset, fqdn),
					Fix: fmt.Sprintf("define the subset in the DestinationPolicy of %s (spec.subsets[].name: %s, with the pods' labels)", fqdn, h.subset)})
			}
		}
	}
	return out
}

// hasSubset reports whether a DestinationPolicy of host fqdn defines subset.
func (w *world) hasSubset(fqdn, subset string) bool {
	for _, dp := range w.policies[fqdn] {
		if slices.ContainsFunc(dp.Spec.Subsets, func(s meshv1alpha1.Subset) bool { return s.Name == subset }) {
			return true
		}
	}
	return false
}

// emptySubsets (CAP007): a DestinationPolicy subset whose labels match
// none of the pods of its host's Service (when the Service has pods).
func emptySubsets(w *world) []Finding {
	var out []Finding
	for i := range w.in.DestinationPolicies {
		dp := &w.in.DestinationPolicies[i]
		svc := w.service(dp.Spec.Host, dp.Namespace)
		if svc == nil || len(w.selected(svc, nil)) == 0 {
			continue
		}
		for j, s := range dp.Spec.Subsets {
			if len(w.selected(svc, s.Labels)) > 0 {
				continue
			}
			out = append(out, Finding{Code: CodeEmptySubset, Severity: SeverityWarning,
				Object:  ObjectRef{Kind: KindDestinationPolicy, Namespace: dp.Namespace, Name: dp.Name},
				Related: []ObjectRef{serviceRef(svc)},
				Message: fmt.Sprintf("spec.subsets[%d] (%s): labels %s match none of the pods of Service %s/%s; requests routed to it get 503 UH",
					j, s.Name, labels.SelectorFromSet(s.Labels), svc.Namespace, svc.Name),
				Fix: "correct the subset's labels to those of the pods (kubectl get pods --show-labels), or deploy its version",
			})
		}
	}
	return out
}

// conflictingRoutes (CAP008): a host claimed by several MeshRoutes is
// routed by the oldest only, as the translator decides.
func conflictingRoutes(w *world) []Finding {
	routes := make([]*meshv1alpha1.MeshRoute, 0, len(w.in.MeshRoutes))
	for i := range w.in.MeshRoutes {
		routes = append(routes, &w.in.MeshRoutes[i])
	}
	slices.SortStableFunc(routes, func(a, b *meshv1alpha1.MeshRoute) int {
		return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	owner := map[string]*meshv1alpha1.MeshRoute{}
	var out []Finding
	for _, mr := range routes {
		for i, h := range mr.Spec.Hosts {
			fqdn := ir.ResolveHost(h, mr.Namespace)
			first, taken := owner[fqdn]
			switch {
			case !taken:
				owner[fqdn] = mr
			case first != mr:
				winner := ObjectRef{Kind: KindMeshRoute, Namespace: first.Namespace, Name: first.Name}
				out = append(out, Finding{Code: CodeConflictingRoute, Severity: SeverityWarning,
					Object:  ObjectRef{Kind: KindMeshRoute, Namespace: mr.Namespace, Name: mr.Name},
					Related: []ObjectRef{winner},
					Message: fmt.Sprintf("spec.hosts[%d]: host %s is already routed by the older %s; this route's rules do not apply to it", i, fqdn, winner),
					Fix:     fmt.Sprintf("merge the rules into %s, or remove the host from one of the routes", winner),
				})
			}
		}
	}
	return out
}
