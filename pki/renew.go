package pki

import (
	"math"
	"time"
)

// DefaultRotationFraction is the Mesh API's default rotationFraction.
const DefaultRotationFraction = 0.5

// RenewJitter is the jitter amplitude of RenewAt, as a fraction of the
// certificate's whole lifetime, in each direction.
const RenewJitter = 0.1

// Bounds of the renewal point, as fractions of the lifetime, whatever the
// fraction and jitter: never at issuance, always with 5% of the life left.
const (
	minRenewFraction = 0.05
	maxRenewFraction = 0.95
)

// RenewAt is when to renew a certificate valid from notBefore to notAfter:
// at fraction of its lifetime, moved by up to ±RenewJitter (10%) of the
// lifetime so that certificates issued together do not renew together, and
// clamped to [5%, 95%] of the lifetime, so the result is always after
// notBefore and before notAfter.
//
// jitter returns a value in [0, 1) (rand.Float64); 0.5 means no shift,
// values outside [0, 1] are clamped, and a nil jitter means no shift. A
// fraction that is NaN or not in (0, 1) means DefaultRotationFraction. If
// notAfter is not after notBefore, RenewAt returns notBefore (renew now).
//
// The lifetime is measured from notBefore, which the built-in CA backdates by
// a minute for clock skew; with the Mesh API's bounds (fraction 0.3..0.8,
// TTL ≥ 10m) that moves the point by well under the jitter.
func RenewAt(notBefore, notAfter time.Time, fraction float64, jitter func() float64) time.Time {
	life := notAfter.Sub(notBefore)
	if life <= 0 {
		return notBefore
	}
	if math.IsNaN(fraction) || fraction <= 0 || fraction >= 1 {
		fraction = DefaultRotationFraction
	}
	j := 0.5
	if jitter != nil {
		j = jitter()
		if math.IsNaN(j) {
			j = 0.5
		}
		j = min(max(j, 0), 1)
	}
	f := fraction + (2*j-1)*RenewJitter
	f = min(max(f, minRenewFraction), maxRenewFraction)
	return notBefore.Add(time.Duration(math.Round(f * float64(life))))
}
