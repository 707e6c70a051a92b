package translate

import (
	"cmp"
	"slices"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/xds/ir"
)

// API defaults of the rule actions.
const (
	defaultPercent             = 100
	defaultBudgetPercent       = 20
	defaultMinRetryConcurrency = 3
	defaultRedirectCode        = 301
)

// defaultRetryOn is used when retries name no condition. Sorted.
var defaultRetryOn = []string{"5xx", "connect-failure", "refused-stream", "reset"}

func convertRetries(r *meshv1alpha1.Retries) *ir.Retries {
	if r == nil {
		return nil
	}
	out := &ir.Retries{
		Attempts:      u32(r.Attempts),
		PerTryTimeout: irDuration(r.PerTryTimeout),
		RetryOn:       slices.Clone(defaultRetryOn),
	}
	if len(r.RetryOn) > 0 {
		out.RetryOn = make([]string, len(r.RetryOn))
		for i, on := range r.RetryOn {
			out.RetryOn[i] = string(on)
		}
		slices.Sort(out.RetryOn)
		out.RetryOn = slices.Compact(out.RetryOn)
	}
	if b := r.Budget; b != nil {
		out.Budget = &ir.RetryBudget{
			Percent:             orDefault(b.Percent, defaultBudgetPercent),
			MinRetryConcurrency: orDefault(b.MinRetryConcurrency, defaultMinRetryConcurrency),
		}
	}
	return out
}

// orDefault applies an API default to an omitempty integer: 0 is how an unset
// value arrives (and what the API server replaces with the default).
func orDefault(v, def int32) uint32 {
	return u32(cmp.Or(v, def))
}

func convertFault(f *meshv1alpha1.Fault) *ir.Fault {
	if f == nil || (f.Delay == nil && f.Abort == nil) {
		return nil
	}
	out := &ir.Fault{}
	if d := f.Delay; d != nil {
		out.Delay = &ir.FaultDelay{Delay: ir.Duration(d.FixedDelay.Duration), Percent: orDefault(d.Percent, defaultPercent)}
	}
	if a := f.Abort; a != nil {
		out.Abort = &ir.FaultAbort{HTTPStatus: u32(a.HTTPStatus), Percent: orDefault(a.Percent, defaultPercent)}
	}
	return out
}

func convertRewrite(r *meshv1alpha1.Rewrite) *ir.Rewrite {
	if r == nil {
		return nil
	}
	return &ir.Rewrite{FullPath: r.URI, Prefix: r.Prefix, Authority: r.Authority}
}

func convertRedirect(r *meshv1alpha1.Redirect) *ir.Redirect {
	if r == nil {
		return nil
	}
	return &ir.Redirect{Path: r.URI, Authority: r.Authority, Code: orDefault(r.Code, defaultRedirectCode)}
}

func convertHeaderEdits(h *meshv1alpha1.HeaderEdits) (request, response *ir.HeaderOps) {
	if h == nil {
		return nil, nil
	}
	return headerOps(h.Request), headerOps(h.Response)
}

// headerOps converts header operations, sorted by name; nil when empty.
func headerOps(ops *meshv1alpha1.HeaderOperations) *ir.HeaderOps {
	if ops == nil || (len(ops.Set) == 0 && len(ops.Add) == 0 && len(ops.Remove) == 0) {
		return nil
	}
	out := &ir.HeaderOps{Set: headers(ops.Set), Add: headers(ops.Add)}
	if len(ops.Remove) > 0 {
		out.Remove = slices.Compact(slices.Sorted(slices.Values(ops.Remove)))
	}
	return out
}

func headers(m map[string]string) []*ir.Header {
	var out []*ir.Header
	for name, value := range m {
		out = append(out, &ir.Header{Name: name, Value: value})
	}
	slices.SortFunc(out, func(a, b *ir.Header) int { return cmp.Compare(a.Name, b.Name) })
	return out
}
