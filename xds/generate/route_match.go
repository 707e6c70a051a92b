package generate

import (
	"fmt"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/capstanmesh/capstan/internal/re2"
	"github.com/capstanmesh/capstan/xds/ir"
)

// routeMatches converts a rule's alternative matches; no match means every request.
func routeMatches(in []*ir.Match) ([]*routev3.RouteMatch, error) {
	if len(in) == 0 {
		return []*routev3.RouteMatch{matchAll()}, nil
	}
	out := make([]*routev3.RouteMatch, 0, len(in))
	for i, m := range in {
		rm, err := routeMatch(m)
		if err != nil {
			return nil, fmt.Errorf("match %d: %w", i, err)
		}
		out = append(out, rm)
	}
	return out, nil
}

func matchAll() *routev3.RouteMatch {
	return &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}
}

// routeMatch converts one match: path, headers, the method (as the :method
// header) and query parameters, all of which must hold.
func routeMatch(m *ir.Match) (*routev3.RouteMatch, error) {
	rm := matchAll()
	if m == nil {
		return rm, nil
	}
	if err := setPathMatch(rm, m.Path); err != nil {
		return nil, fmt.Errorf("path: %w", err)
	}
	var err error
	if rm.Headers, err = headerMatches(m.Headers, m.Method); err != nil {
		return nil, err
	}
	if rm.QueryParameters, err = queryMatches(m.QueryParams); err != nil {
		return nil, err
	}
	return rm, nil
}

// setPathMatch sets an exact, prefix or RE2 path match; no path matches every path.
func setPathMatch(rm *routev3.RouteMatch, p *ir.StringMatch) error {
	if p == nil {
		return nil
	}
	switch p.Kind {
	case ir.MatchExact:
		rm.PathSpecifier = &routev3.RouteMatch_Path{Path: p.Value}
	case ir.MatchPrefix:
		rm.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: p.Value}
	case ir.MatchRegex:
		re, err := safeRegex(p.Value)
		if err != nil {
			return err
		}
		rm.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: re}
	default:
		return fmt.Errorf("match kind %q is not supported for paths", p.Kind)
	}
	return nil
}

func headerMatches(in []*ir.KeyedMatch, method string) ([]*routev3.HeaderMatcher, error) {
	out := make([]*routev3.HeaderMatcher, 0, len(in)+1)
	for _, h := range in {
		if h == nil {
			continue
		}
		hm, err := headerMatch(h)
		if err != nil {
			return nil, fmt.Errorf("header %q: %w", h.Name, err)
		}
		out = append(out, hm)
	}
	if method != "" {
		out = append(out, &routev3.HeaderMatcher{
			Name:                 ":method",
			HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: exactMatcher(method)},
		})
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func headerMatch(h *ir.KeyedMatch) (*routev3.HeaderMatcher, error) {
	hm := &routev3.HeaderMatcher{Name: h.Name, InvertMatch: h.Invert}
	if h.Kind == ir.MatchPresent {
		hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}
		return hm, nil
	}
	sm, err := stringMatcher(h.Kind, h.Value)
	if err != nil {
		return nil, err
	}
	hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_StringMatch{StringMatch: sm}
	return hm, nil
}

func queryMatches(in []*ir.KeyedMatch) ([]*routev3.QueryParameterMatcher, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]*routev3.QueryParameterMatcher, 0, len(in))
	for _, q := range in {
		if q == nil {
			continue
		}
		qm, err := queryMatch(q)
		if err != nil {
			return nil, fmt.Errorf("query parameter %q: %w", q.Name, err)
		}
		out = append(out, qm)
	}
	return out, nil
}

func queryMatch(q *ir.KeyedMatch) (*routev3.QueryParameterMatcher, error) {
	if q.Invert {
		return nil, fmt.Errorf("invert is not supported for query parameters")
	}
	qm := &routev3.QueryParameterMatcher{Name: q.Name}
	if q.Kind == ir.MatchPresent {
		qm.QueryParameterMatchSpecifier = &routev3.QueryParameterMatcher_PresentMatch{PresentMatch: true}
		return qm, nil
	}
	sm, err := stringMatcher(q.Kind, q.Value)
	if err != nil {
		return nil, err
	}
	qm.QueryParameterMatchSpecifier = &routev3.QueryParameterMatcher_StringMatch{StringMatch: sm}
	return qm, nil
}

// stringMatcher compares a value exactly, by prefix or by an RE2 regex.
func stringMatcher(kind ir.MatchKind, value string) (*matcherv3.StringMatcher, error) {
	switch kind {
	case ir.MatchExact:
		return exactMatcher(value), nil
	case ir.MatchPrefix:
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: value}}, nil
	case ir.MatchRegex:
		re, err := safeRegex(value)
		if err != nil {
			return nil, err
		}
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: re}}, nil
	}
	return nil, fmt.Errorf("unknown match kind %q", kind)
}

func exactMatcher(v string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: v}}
}

// safeRegex checks a regex with Envoy's own rule (internal/re2) before Envoy
// sees it. The check is memoised: translation has already measured every
// regex of the model, so generating for each proxy compiles nothing.
func safeRegex(re string) (*matcherv3.RegexMatcher, error) {
	if err := re2.Check(re); err != nil {
		return nil, fmt.Errorf("regular expression: %w", err)
	}
	return &matcherv3.RegexMatcher{Regex: re}, nil
}
