package analyze

import (
	"fmt"
	"strings"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/api/validation"
)

// wholePoolEjection (CAP004, seed failure 4): outlier detection that can
// eject every endpoint of a pool under load, by the one rule of
// api/validation (CanEjectWholePool). Admission refuses it unless the
// policy carries capstan.dev/allow-aggressive-ejection: "true"; with the
// annotation it is a warning, without (admitted while the webhook was off)
// an error.
func wholePoolEjection(w *world) []Finding {
	var out []Finding
	for i := range w.in.DestinationPolicies {
		dp := &w.in.DestinationPolicies[i]
		problems := validation.WholePoolEjections(dp)
		if len(problems) == 0 {
			continue
		}
		fields := make([]string, 0, len(problems))
		for _, p := range problems {
			fields = append(fields, p.Field)
		}
		f := Finding{
			Code:     CodeWholePoolEjection,
			Severity: SeverityError,
			Object:   ObjectRef{Kind: KindDestinationPolicy, Namespace: dp.Namespace, Name: dp.Name},
			Message: fmt.Sprintf("outlier detection can eject every endpoint of %s under load (%s: %d with minHealthPercent 0), "+
				"and then every request fails with 503 UH; admission refuses this without the annotation %s",
				dp.Spec.Host, strings.Join(fields, ", "), validation.WholePoolEjectionPercent, meshv1alpha1.AnnotationAllowAggressiveEjection),
			Fix: fmt.Sprintf("set maxEjectionPercent below %d (the default, 50, keeps half the pool) or minHealthPercent above 0 "+
				"(a panic threshold: below it Envoy sends to every endpoint again)", validation.WholePoolEjectionPercent),
		}
		if validation.AllowsAggressiveEjection(dp) {
			f.Severity = SeverityWarning
			f.Message = fmt.Sprintf("outlier detection can eject every endpoint of %s under load (%s), admitted because of the annotation %s",
				dp.Spec.Host, strings.Join(fields, ", "), meshv1alpha1.AnnotationAllowAggressiveEjection)
		}
		out = append(out, f)
	}
	return out
}
