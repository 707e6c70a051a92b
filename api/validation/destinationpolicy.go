package validation

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// DestinationPolicy checks a DestinationPolicy: unique subset names, subset
// labels a pod can carry, the consistent-hash header name, and outlier
// detection that can eject the whole pool (WholePoolEjections), unless the
// policy is annotated capstan.dev/allow-aggressive-ejection: "true".
func DestinationPolicy(dp *meshv1alpha1.DestinationPolicy) field.ErrorList {
	allowAggressive := AllowsAggressiveEjection(dp)
	spec := field.NewPath("spec")
	errs := trafficPolicy(dp.Spec.TrafficPolicy, spec.Child("trafficPolicy"), allowAggressive)
	seen := map[string]int{}
	for i := range dp.Spec.Subsets {
		s := &dp.Spec.Subsets[i]
		path := spec.Child("subsets").Index(i)
		if j, dup := seen[s.Name]; dup {
			errs = append(errs, field.Invalid(path.Child("name"), s.Name,
				fmt.Sprintf("subset %q is already defined by spec.subsets[%d]", s.Name, j)))
		} else {
			seen[s.Name] = i
		}
		errs = append(errs, labels(s.Labels, path.Child("labels"))...)
		errs = append(errs, trafficPolicy(s.TrafficPolicy, path.Child("trafficPolicy"), allowAggressive)...)
	}
	return errs
}

// AllowsAggressiveEjection says whether dp carries
// capstan.dev/allow-aggressive-ejection: "true", which admits outlier
// detection that can eject the whole pool.
func AllowsAggressiveEjection(dp *meshv1alpha1.DestinationPolicy) bool {
	return dp.Annotations[meshv1alpha1.AnnotationAllowAggressiveEjection] == "true"
}

func trafficPolicy(tp *meshv1alpha1.TrafficPolicy, path *field.Path, allowAggressive bool) field.ErrorList {
	if tp == nil {
		return nil
	}
	var errs field.ErrorList
	if lb := tp.LoadBalancer; lb != nil && lb.ConsistentHash != nil && lb.ConsistentHash.HTTPHeaderName != "" &&
		!headerNameRE.MatchString(lb.ConsistentHash.HTTPHeaderName) {
		errs = append(errs, field.Invalid(path.Child("loadBalancer", "consistentHash", "httpHeaderName"),
			lb.ConsistentHash.HTTPHeaderName, "must be a lower-case HTTP header name"))
	}
	if !allowAggressive {
		errs = append(errs, wholePoolEjection(tp.OutlierDetection, path.Child("outlierDetection"))...)
	}
	return errs
}

// WholePoolEjections lists the outlier detection settings of dp (its traffic
// policy's and each subset's) that can eject the whole pool, whatever dp's
// annotations say. Admission uses it to warn about the settings it admits
// because of capstan.dev/allow-aggressive-ejection.
func WholePoolEjections(dp *meshv1alpha1.DestinationPolicy) field.ErrorList {
	spec := field.NewPath("spec")
	var errs field.ErrorList
	if tp := dp.Spec.TrafficPolicy; tp != nil {
		errs = wholePoolEjection(tp.OutlierDetection, spec.Child("trafficPolicy", "outlierDetection"))
	}
	for i := range dp.Spec.Subsets {
		if tp := dp.Spec.Subsets[i].TrafficPolicy; tp != nil {
			errs = append(errs, wholePoolEjection(tp.OutlierDetection,
				spec.Child("subsets").Index(i).Child("trafficPolicy", "outlierDetection"))...)
		}
	}
	return errs
}

func wholePoolEjection(od *meshv1alpha1.OutlierDetection, path *field.Path) field.ErrorList {
	if !CanEjectWholePool(od) {
		return nil
	}
	return field.ErrorList{field.Invalid(path.Child("maxEjectionPercent"), *od.MaxEjectionPercent,
		fmt.Sprintf("with minHealthPercent 0 this can eject every endpoint under load; "+
			"keep maxEjectionPercent below %d, or annotate the policy %s: \"true\"",
			WholePoolEjectionPercent, meshv1alpha1.AnnotationAllowAggressiveEjection))}
}
