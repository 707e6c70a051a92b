package translate

import (
	"cmp"
	"fmt"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/internal/re2"
	"github.com/capstanmesh/capstan/xds/ir"
)

// validateRule finds what admission (CEL) cannot check, or may not have
// checked, and that would make the rule unprogrammable. Each error names the field.
func validateRule(rule *meshv1alpha1.HTTPRule, field string) []string {
	var errs []string
	switch {
	case rule.Redirect != nil && len(rule.Route) > 0:
		errs = append(errs, field+".redirect: redirect and route are mutually exclusive")
	case rule.Redirect == nil && len(rule.Route) == 0:
		errs = append(errs, field+".route: a rule needs a route or a redirect")
	case len(rule.Route) > 1 && weightSum(rule.Route) != 100:
		errs = append(errs, fmt.Sprintf("%s.route: weights of the destinations sum to %d, not 100", field, weightSum(rule.Route)))
	}
	if rule.Rewrite != nil && rule.Rewrite.Prefix != "" {
		switch {
		case len(rule.Match) == 0:
			errs = append(errs, field+".rewrite.prefix: needs a Prefix path match, and the rule has no match")
		case !allPrefixPaths(rule.Match):
			errs = append(errs, field+".rewrite.prefix: needs every match of the rule to have a Prefix path match")
		}
	}
	return errs
}

func weightSum(ds []meshv1alpha1.Destination) int64 {
	var sum int64
	for _, d := range ds {
		sum += int64(weightOf(&d))
	}
	return sum
}

func weightOf(d *meshv1alpha1.Destination) int32 {
	if d.Weight == nil {
		return 0
	}
	return *d.Weight
}

// allPrefixPaths reports whether each match has a Prefix path match, the only
// case in which a matched prefix can be replaced.
func allPrefixPaths(matches []meshv1alpha1.HTTPMatch) bool {
	for _, m := range matches {
		if m.Path == nil || pathKind(m.Path.Type) != ir.MatchPrefix {
			return false
		}
	}
	return true
}

// regexBytes is the length of a rule's regular expressions.
func regexBytes(rule *meshv1alpha1.HTTPRule) int {
	n := 0
	for i := range rule.Match {
		forEachRegex(&rule.Match[i], "", func(_, value string) { n += len(value) })
	}
	return n
}

// validateRegexes checks a rule's regular expressions with Envoy's rule
// (internal/re2, memoised: each distinct pattern is compiled once, and the
// generator's check of the same pattern for every proxy finds the result).
func validateRegexes(rule *meshv1alpha1.HTTPRule, field string) []string {
	var errs []string
	for i := range rule.Match {
		forEachRegex(&rule.Match[i], fmt.Sprintf("%s.match[%d]", field, i), func(f, value string) {
			if err := re2.Check(value); err != nil {
				errs = append(errs, fmt.Sprintf("%s.value: %v", f, err))
			}
		})
	}
	return errs
}

// forEachRegex calls fn with the field and value of each RegularExpression of m.
func forEachRegex(m *meshv1alpha1.HTTPMatch, field string, fn func(field, value string)) {
	check := func(f string, typ meshv1alpha1.MatchType, value string) {
		if typ == meshv1alpha1.MatchRegularExpression {
			fn(f, value)
		}
	}
	if m.Path != nil {
		check(field+".path", m.Path.Type, m.Path.Value)
	}
	for i, h := range m.Headers {
		check(fmt.Sprintf("%s.headers[%d]", field, i), h.Type, h.Value)
	}
	for i, q := range m.QueryParams {
		check(fmt.Sprintf("%s.queryParams[%d]", field, i), q.Type, q.Value)
	}
}

func convertMatches(in []meshv1alpha1.HTTPMatch) []*ir.Match {
	var out []*ir.Match
	for i := range in {
		out = append(out, convertMatch(&in[i]))
	}
	return out
}

func convertMatch(m *meshv1alpha1.HTTPMatch) *ir.Match {
	out := &ir.Match{Method: m.Method}
	if m.Path != nil {
		out.Path = &ir.StringMatch{Kind: pathKind(m.Path.Type), Value: m.Path.Value}
	}
	for _, h := range m.Headers {
		out.Headers = append(out.Headers, keyedMatch(h.Name, h.Type, h.Value, h.Invert))
	}
	for _, q := range m.QueryParams {
		out.QueryParams = append(out.QueryParams, keyedMatch(q.Name, q.Type, q.Value, false))
	}
	return out
}

// pathKind applies the API default: a path match is a Prefix match.
func pathKind(t meshv1alpha1.MatchType) ir.MatchKind {
	return ir.MatchKind(cmp.Or(t, meshv1alpha1.MatchPrefix))
}

// keyedMatch applies the API default (Exact); a Present match carries no value.
func keyedMatch(name string, t meshv1alpha1.MatchType, value string, invert bool) *ir.KeyedMatch {
	kind := ir.MatchKind(cmp.Or(t, meshv1alpha1.MatchExact))
	if kind == ir.MatchPresent {
		value = ""
	}
	return &ir.KeyedMatch{Name: name, Kind: kind, Value: value, Invert: invert}
}
