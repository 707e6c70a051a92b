package translate

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/capstanmesh/capstan/xds/ir"
)

// irDuration converts an optional API duration.
func irDuration(d *metav1.Duration) *ir.Duration {
	if d == nil {
		return nil
	}
	return ir.DurationPtr(d.Duration)
}

// durationOr converts d, or def when d is unset.
func durationOr(d *metav1.Duration, def time.Duration) ir.Duration {
	if d == nil {
		return ir.Duration(def)
	}
	return ir.Duration(d.Duration)
}
