package validation

import (
	"fmt"
	"strconv"

	"k8s.io/apimachinery/pkg/util/validation/field"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// MeshRoute checks a MeshRoute: the total size of its regular expressions
// (RegexTotal) and, for each rule in order, a unique name and HTTPRule's
// checks. Every problem of rule i has a field under spec.http[i]; the total
// size problem is on spec.http itself.
func MeshRoute(mr *meshv1alpha1.MeshRoute) field.ErrorList {
	var errs field.ErrorList
	total := RegexTotal(mr)
	errs = append(errs, total...)
	names := map[string]int{}
	for i := range mr.Spec.HTTP {
		rule := &mr.Spec.HTTP[i]
		path := field.NewPath("spec", "http").Index(i)
		name := RuleName(rule, i)
		if first, dup := names[name]; dup {
			errs = append(errs, field.Invalid(path.Child("name"), rule.Name,
				fmt.Sprintf("duplicates the name of spec.http[%d]", first)))
		} else {
			names[name] = i
		}
		errs = append(errs, HTTPRule(rule, path, len(total) == 0)...)
	}
	return errs
}

// RuleName is the name a rule goes by in statuses and stats: its name, or
// its index when it has none.
func RuleName(rule *meshv1alpha1.HTTPRule, i int) string {
	if rule.Name != "" {
		return rule.Name
	}
	return strconv.Itoa(i)
}

// HTTPRule checks one rule at path: route or redirect (CEL's rules, kept as a
// second line), a prefix rewrite's path matches, repeated destinations, the
// per-try timeout against the rule's timeout, header edits and, when
// checkRegexes is set, each regular expression (Regexes).
func HTTPRule(rule *meshv1alpha1.HTTPRule, path *field.Path, checkRegexes bool) field.ErrorList {
	errs := routeOrRedirect(rule, path)
	errs = append(errs, prefixRewrite(rule, path)...)
	errs = append(errs, destinations(rule.Route, path.Child("route"))...)
	errs = append(errs, perTryTimeout(rule, path)...)
	if rule.Headers != nil {
		errs = append(errs, headerOperations(rule.Headers.Request, path.Child("headers", "request"))...)
		errs = append(errs, headerOperations(rule.Headers.Response, path.Child("headers", "response"))...)
	}
	if checkRegexes {
		errs = append(errs, Regexes(rule, path)...)
	}
	return errs
}

// routeOrRedirect: a rule has a route or a redirect, not both, and the
// weights of two or more destinations sum to 100. CEL refuses these too.
func routeOrRedirect(rule *meshv1alpha1.HTTPRule, path *field.Path) field.ErrorList {
	switch {
	case rule.Redirect != nil && len(rule.Route) > 0:
		return field.ErrorList{field.Invalid(path.Child("redirect"), "redirect", "redirect and route are mutually exclusive")}
	case rule.Redirect == nil && len(rule.Route) == 0:
		return field.ErrorList{field.Required(path.Child("route"), "a rule needs a route or a redirect")}
	case len(rule.Route) > 1 && weightSum(rule.Route) != 100:
		return field.ErrorList{field.Invalid(path.Child("route"), weightSum(rule.Route),
			fmt.Sprintf("weights of the destinations sum to %d, not 100", weightSum(rule.Route)))}
	}
	return nil
}

func weightSum(ds []meshv1alpha1.Destination) int64 {
	var sum int64
	for _, d := range ds {
		if d.Weight != nil {
			sum += int64(*d.Weight)
		}
	}
	return sum
}

// prefixRewrite: a prefix rewrite replaces the matched prefix, so every
// match of the rule must be a Prefix path match.
func prefixRewrite(rule *meshv1alpha1.HTTPRule, path *field.Path) field.ErrorList {
	if rule.Rewrite == nil || rule.Rewrite.Prefix == "" {
		return nil
	}
	p := path.Child("rewrite", "prefix")
	switch {
	case len(rule.Match) == 0:
		return field.ErrorList{field.Invalid(p, rule.Rewrite.Prefix, "needs a Prefix path match, and the rule has no match")}
	case !allPrefixPathMatches(rule.Match):
		return field.ErrorList{field.Invalid(p, rule.Rewrite.Prefix, "needs every match of the rule to have a Prefix path match")}
	}
	return nil
}

// allPrefixPathMatches says whether every match has a Prefix path match (the
// API's default type).
func allPrefixPathMatches(matches []meshv1alpha1.HTTPMatch) bool {
	for _, m := range matches {
		if m.Path == nil || (m.Path.Type != meshv1alpha1.MatchPrefix && m.Path.Type != "") {
			return false
		}
	}
	return true
}

// destinations reports a destination listed twice in one rule.
func destinations(route []meshv1alpha1.Destination, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]int{}
	for i, d := range route {
		key := d.Host + "/" + d.Subset + "/" + strconv.Itoa(int(d.Port))
		if first, dup := seen[key]; dup {
			errs = append(errs, field.Invalid(path.Index(i), d.Host,
				fmt.Sprintf("the same destination as route[%d]; merge their weights", first)))
			continue
		}
		seen[key] = i
	}
	return errs
}

// perTryTimeout: a per-try timeout above the rule's timeout leaves no time
// for a retry.
func perTryTimeout(rule *meshv1alpha1.HTTPRule, path *field.Path) field.ErrorList {
	r, t := rule.Retries, rule.Timeout
	if r == nil || r.PerTryTimeout == nil || t == nil || t.Duration <= 0 || r.PerTryTimeout.Duration <= t.Duration {
		return nil
	}
	return field.ErrorList{field.Invalid(path.Child("retries", "perTryTimeout"), r.PerTryTimeout.String(),
		fmt.Sprintf("must not exceed the rule's timeout %s, or no retry can happen", t.Duration))}
}

// headerOperations refuses header edits that Envoy rejects: pseudo headers
// and Host cannot be set, added or removed.
func headerOperations(ops *meshv1alpha1.HeaderOperations, path *field.Path) field.ErrorList {
	if ops == nil {
		return nil
	}
	var errs field.ErrorList
	for _, name := range sortedKeys(ops.Set) {
		errs = append(errs, editableHeader(name, path.Child("set").Key(name))...)
	}
	for _, name := range sortedKeys(ops.Add) {
		errs = append(errs, editableHeader(name, path.Child("add").Key(name))...)
	}
	for i, name := range ops.Remove {
		errs = append(errs, editableHeader(name, path.Child("remove").Index(i))...)
	}
	return errs
}

func editableHeader(name string, path *field.Path) field.ErrorList {
	switch {
	case name == "host":
		return field.ErrorList{field.Invalid(path, name, "the host header cannot be edited; use rewrite.authority")}
	case !headerNameRE.MatchString(name):
		return field.ErrorList{field.Invalid(path, name, "must be a lower-case HTTP header name (pseudo-headers cannot be edited)")}
	}
	return nil
}
