package validation

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// MeshName reports a Mesh not named "default"; Capstan reads only that one.
// CEL refuses such a Mesh too; the status reports it with its own reason.
func MeshName(m *meshv1alpha1.Mesh) field.ErrorList {
	if m.Name == meshv1alpha1.MeshName {
		return nil
	}
	return field.ErrorList{field.Invalid(field.NewPath("metadata", "name"), m.Name,
		fmt.Sprintf("the Mesh must be named %q; this one is ignored", meshv1alpha1.MeshName))}
}

// Mesh checks a Mesh's spec: the proxy's resource requests must not exceed
// its limits, or the API server would refuse every injected pod.
func Mesh(m *meshv1alpha1.Mesh) field.ErrorList {
	return resources(m.Spec.Proxy.Resources, field.NewPath("spec", "proxy", "resources"))
}

func resources(r corev1.ResourceRequirements, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, name := range sortedKeys(r.Requests) {
		limit, ok := r.Limits[name]
		if req := r.Requests[name]; ok && req.Cmp(limit) > 0 {
			errs = append(errs, field.Invalid(path.Child("requests").Key(string(name)), req.String(),
				fmt.Sprintf("must be less than or equal to the limit %s", limit.String())))
		}
	}
	return errs
}
