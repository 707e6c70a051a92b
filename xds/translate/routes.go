package translate

import (
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/util/validation/field"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/api/validation"
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

// translateRules converts the rules in order. A rule with a problem
// (api/validation) is left out and the problem reported as Invalid; when the
// MeshRoute's regular expressions are above the total limit, the rules that
// have any are left out too.
func (t *translator) translateRules(mr *meshv1alpha1.MeshRoute, st *objectStatus) []*ir.HTTPRoute {
	problems := validation.MeshRoute(mr)
	regexTotal := problemsAt(problems, field.NewPath("spec", "http"))
	reportInvalid(st, regexTotal)
	var out []*ir.HTTPRoute
	for i := range mr.Spec.HTTP {
		rule := &mr.Spec.HTTP[i]
		path := field.NewPath("spec", "http").Index(i)
		if errs := problemsUnder(problems, path); len(errs) > 0 {
			reportInvalid(st, errs)
			continue
		}
		if len(regexTotal) > 0 && validation.RegexBytes(rule) > 0 {
			st.invalidf("%s: rule left out: the MeshRoute's regular expressions are above the total limit", path)
			continue
		}
		if r := t.translateRule(mr, st, rule, path.String(), validation.RuleName(rule, i)); r != nil {
			out = append(out, r)
		}
	}
	return out
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
