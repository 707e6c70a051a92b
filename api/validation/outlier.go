package validation

import meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"

// WholePoolEjectionPercent is the maxEjectionPercent from which outlier
// detection can eject every endpoint of a pool.
//
// Envoy ejects a host only while the share of ejected hosts stays within
// max_ejection_percent, so any value below 100 keeps some endpoints of a
// pool of several in service (a single-endpoint pool is a corner case: Envoy
// may eject its one host whatever the percentage). Only 100 lets it eject
// them all. With a panic
// threshold (minHealthPercent above 0) Envoy then sends traffic to every
// endpoint anyway, so the pool can be ejected whole only when both hold.
//
// This is the one definition of "can eject the whole pool". It is what a
// user coming from Istio or Linkerd expects: Istio accepts any
// maxEjectionPercent and any consecutive5xxErrors (its own circuit-breaking
// example uses 1 error and 100%), Linkerd's failure accrual has no
// percentage at all; Capstan refuses only the one combination that really
// fails every request, and keeps a way to insist (the annotation).
const WholePoolEjectionPercent = 100

// CanEjectWholePool says whether od can eject every endpoint of a pool with
// no panic threshold to fall back on: maxEjectionPercent 100 and
// minHealthPercent 0. Unset fields take the API defaults (50 and 50), which
// never can; consecutive5xxErrors plays no part, because maxEjectionPercent
// caps how many endpoints any number of errors can eject.
func CanEjectWholePool(od *meshv1alpha1.OutlierDetection) bool {
	return od != nil &&
		od.MaxEjectionPercent != nil && *od.MaxEjectionPercent >= WholePoolEjectionPercent &&
		od.MinHealthPercent != nil && *od.MinHealthPercent == 0
}
