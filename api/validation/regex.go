package validation

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/internal/re2"
)

// RegexTotal reports a MeshRoute whose regular expressions add up to more
// than re2.MaxTotalBytes. It is checked before any pattern is parsed, so that
// an oversized object costs no compilation; when it fails, MeshRoute checks
// no pattern.
func RegexTotal(mr *meshv1alpha1.MeshRoute) field.ErrorList {
	total := 0
	for i := range mr.Spec.HTTP {
		total += RegexBytes(&mr.Spec.HTTP[i])
	}
	if total <= re2.MaxTotalBytes {
		return nil
	}
	return field.ErrorList{field.Invalid(field.NewPath("spec", "http"), fmt.Sprintf("%d bytes of regular expressions", total),
		fmt.Sprintf("the regular expressions total %d bytes; one MeshRoute may have at most %d", total, re2.MaxTotalBytes))}
}

// RegexBytes is the length of a rule's regular expressions.
func RegexBytes(rule *meshv1alpha1.HTTPRule) int {
	n := 0
	for i := range rule.Match {
		forEachRegex(&rule.Match[i], field.NewPath("match"), func(_ *field.Path, value string) { n += len(value) })
	}
	return n
}

// Regexes checks the regular expressions of the rule at path with Envoy's
// rule (internal/re2, memoised), naming each field and, for a pattern that is
// too large, its RE2 program size and the limit.
func Regexes(rule *meshv1alpha1.HTTPRule, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i := range rule.Match {
		forEachRegex(&rule.Match[i], path.Child("match").Index(i), func(p *field.Path, value string) {
			if err := re2.Check(value); err != nil {
				errs = append(errs, field.Invalid(p, value, err.Error()))
			}
		})
	}
	return errs
}

// forEachRegex calls fn with the value field (under path) and the value of
// each RegularExpression match of m, in field order.
func forEachRegex(m *meshv1alpha1.HTTPMatch, path *field.Path, fn func(*field.Path, string)) {
	if m.Path != nil && m.Path.Type == meshv1alpha1.MatchRegularExpression {
		fn(path.Child("path", "value"), m.Path.Value)
	}
	for k, h := range m.Headers {
		if h.Type == meshv1alpha1.MatchRegularExpression {
			fn(path.Child("headers").Index(k).Child("value"), h.Value)
		}
	}
	for k, q := range m.QueryParams {
		if q.Type == meshv1alpha1.MatchRegularExpression {
			fn(path.Child("queryParams").Index(k).Child("value"), q.Value)
		}
	}
}
