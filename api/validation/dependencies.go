package validation

import (
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/capstanmesh/capstan/api/annotations"
	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// Dependencies checks the capstan.dev/dependencies annotation of a pod or a
// namespace (annotations.ParseDependencies): one problem per invalid entry,
// on the path metadata.annotations[capstan.dev/dependencies]. Admission of
// injected pods refuses them; the translator uses the valid entries and
// reports the invalid ones.
func Dependencies(objAnnotations map[string]string) field.ErrorList {
	v, ok := objAnnotations[meshv1alpha1.AnnotationDependencies]
	if !ok {
		return nil
	}
	path := field.NewPath("metadata", "annotations").Key(meshv1alpha1.AnnotationDependencies)
	_, errs := annotations.ParseDependencies(v)
	var out field.ErrorList
	for _, err := range errs {
		out = append(out, field.Invalid(path, v, err.Error()))
	}
	return out
}
