package translate

import (
	"cmp"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/xds/ir"
)

func weightOf(d *meshv1alpha1.Destination) int32 {
	if d.Weight == nil {
		return 0
	}
	return *d.Weight
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
