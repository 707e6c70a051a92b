package translate

import (
	"fmt"
	"slices"
	"strconv"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/internal/re2"
	"github.com/capstanmesh/capstan/xds/ir"
)

// translateRoutes gives each host the rules of the oldest MeshRoute that
// claims it. A MeshRoute that loses a host to an older one is Conflicted but
// keeps the hosts it did win.
func (t *translator) translateRoutes() {
	for _, mr := range byAge(t.in.MeshRoutes) {
		st := t.statuses.get(KindMeshRoute, mr, true)
		claimed := t.claimHosts(mr, st)
		rules := t.translateRules(mr, st)
		for _, svc := range claimed {
			svc.Routes = slices.Clone(rules)
		}
	}
}

// claimHosts marks every host of mr that no older MeshRoute owns as routed by
// mr and returns those services.
func (t *translator) claimHosts(mr *meshv1alpha1.MeshRoute, st *objectStatus) []*ir.Service {
	var claimed []*ir.Service
	for i, host := range mr.Spec.Hosts {
		field := fmt.Sprintf("spec.hosts[%d]", i)
		svc, fqdn := t.lookupHost(host, mr.Namespace)
		switch {
		case svc == nil:
			st.unresolvedf(meshv1alpha1.ReasonHostNotFound, "%s: host %q (%s) names no Service", field, host, fqdn)
		case svc.RouteSource != nil && *svc.RouteSource == st.ref:
			// The same host written twice, e.g. "reviews" and "reviews.default".
		case svc.RouteSource != nil:
			st.conflictf("%s: host %s is already routed by %s", field, fqdn, t.statuses.winner(*svc.RouteSource, st))
		case !hasHTTPPort(svc):
			st.invalidf("%s: Service %s has no HTTP port; MeshRoute rules apply to HTTP ports only", field, fqdn)
		default:
			ref := st.ref
			svc.RouteSource = &ref
			claimed = append(claimed, svc)
		}
	}
	return claimed
}

func hasHTTPPort(svc *ir.Service) bool {
	return slices.ContainsFunc(svc.Ports, func(p *ir.ServicePort) bool { return p.Protocol.IsHTTP() })
}

// translateRules converts the rules in order. A rule with an unprogrammable
// field is dropped (Invalid); a rule left with no destination is dropped too.
func (t *translator) translateRules(mr *meshv1alpha1.MeshRoute, st *objectStatus) []*ir.HTTPRoute {
	var out []*ir.HTTPRoute
	names := map[string]int{}
	regexBudget := t.regexBudget(mr, st)
	for i := range mr.Spec.HTTP {
		rule := &mr.Spec.HTTP[i]
		field := fmt.Sprintf("spec.http[%d]", i)
		name := ruleName(rule, i)
		if j, dup := names[name]; dup {
			st.invalidf("%s.name: rule name %q is already used by spec.http[%d]", field, name, j)
			continue
		}
		names[name] = i
		if !regexBudget && regexBytes(rule) > 0 {
			st.invalidf("%s: rule left out: the MeshRoute's regular expressions are above the total limit", field)
			continue
		}
		errs := validateRule(rule, field)
		errs = append(errs, validateRegexes(rule, field)...)
		if len(errs) > 0 {
			for _, e := range errs {
				st.invalidf("%s", e)
			}
			continue
		}
		if r := t.translateRule(mr, st, rule, field, name); r != nil {
			out = append(out, r)
		}
	}
	return out
}

// regexBudget reports whether mr's regular expressions fit the per-object
// total (checked before any is parsed); if not, it says so on the status and
// the rules with regular expressions are left out.
func (t *translator) regexBudget(mr *meshv1alpha1.MeshRoute, st *objectStatus) bool {
	total := 0
	for i := range mr.Spec.HTTP {
		total += regexBytes(&mr.Spec.HTTP[i])
	}
	if total <= re2.MaxTotalBytes {
		return true
	}
	st.invalidf("spec.http: the regular expressions total %d bytes; one MeshRoute may have at most %d", total, re2.MaxTotalBytes)
	return false
}

func ruleName(rule *meshv1alpha1.HTTPRule, i int) string {
	if rule.Name != "" {
		return rule.Name
	}
	return strconv.Itoa(i)
}

func (t *translator) translateRule(mr *meshv1alpha1.MeshRoute, st *objectStatus, rule *meshv1alpha1.HTTPRule, field, name string) *ir.HTTPRoute {
	r := &ir.HTTPRoute{
		Name:     mr.Namespace + "/" + mr.Name + "/" + name,
		Source:   st.ref,
		Matches:  convertMatches(rule.Match),
		Timeout:  irDuration(rule.Timeout),
		Retries:  convertRetries(rule.Retries),
		Fault:    convertFault(rule.Fault),
		Rewrite:  convertRewrite(rule.Rewrite),
		Redirect: convertRedirect(rule.Redirect),
	}
	r.RequestHeaders, r.ResponseHeaders = convertHeaderEdits(rule.Headers)
	if r.Redirect != nil {
		return r
	}
	r.Destinations = t.resolveDestinations(mr.Namespace, rule.Route, field, st)
	if len(r.Destinations) == 0 {
		return nil
	}
	if rule.Mirror != nil {
		r.Mirror = t.resolveMirror(mr.Namespace, rule.Mirror, r.Destinations[0].Port, field+".mirror", st)
	}
	return r
}
