package generate

import (
	"fmt"
	"strings"

	"github.com/capstanmesh/capstan/xds/ir"
)

// checkRule rejects rules that pass ValidateAll but that Envoy would refuse
// when loading them (and with them the whole route configuration).
func checkRule(in *ir.HTTPRoute) error {
	if err := in.Validate(); err != nil {
		return err
	}
	if err := checkDurations(in); err != nil {
		return err
	}
	for _, ops := range []*ir.HeaderOps{in.RequestHeaders, in.ResponseHeaders} {
		if err := checkHeaderEdits(ops); err != nil {
			return err
		}
	}
	return nil
}

// checkDurations refuses negative durations, which Envoy does not accept.
func checkDurations(in *ir.HTTPRoute) error {
	for _, n := range ruleDurations(in) {
		if n.d != nil && *n.d < 0 {
			return fmt.Errorf("%s %s is negative", n.name, n.d.Std())
		}
	}
	return nil
}

type namedDuration struct {
	name string
	d    *ir.Duration
}

func ruleDurations(in *ir.HTTPRoute) []namedDuration {
	out := []namedDuration{{"timeout", in.Timeout}}
	if in.Retries != nil {
		out = append(out, namedDuration{"per-try timeout", in.Retries.PerTryTimeout})
	}
	if in.Fault != nil && in.Fault.Delay != nil {
		out = append(out, namedDuration{"fault delay", &in.Fault.Delay.Delay})
	}
	return out
}

// checkHeaderEdits refuses edits of pseudo-headers and Host, which Envoy does not allow.
func checkHeaderEdits(ops *ir.HeaderOps) error {
	if ops == nil {
		return nil
	}
	names := make([]string, 0, len(ops.Set)+len(ops.Add)+len(ops.Remove))
	for _, h := range append(append([]*ir.Header{}, ops.Set...), ops.Add...) {
		if h != nil {
			names = append(names, h.Name)
		}
	}
	for _, name := range append(names, ops.Remove...) {
		if strings.HasPrefix(name, ":") || strings.EqualFold(name, "host") {
			return fmt.Errorf("header %q may not be modified", name)
		}
	}
	return nil
}
