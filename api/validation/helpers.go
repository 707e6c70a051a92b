package validation

import (
	"regexp"
	"slices"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// headerNameRE is a lower-case HTTP header name without a pseudo-header colon.
var headerNameRE = regexp.MustCompile(`^[a-z0-9!#$%&'*+\-.^_|~]+$`)

// labels checks label keys and values as the API server checks them on pods.
func labels(m map[string]string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, k := range sortedKeys(m) {
		if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
			errs = append(errs, field.Invalid(path.Key(k), k, "invalid label key: "+msgs[0]))
		}
		if msgs := validation.IsValidLabelValue(m[k]); len(msgs) > 0 {
			errs = append(errs, field.Invalid(path.Key(k), m[k], "invalid label value: "+msgs[0]))
		}
	}
	return errs
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
