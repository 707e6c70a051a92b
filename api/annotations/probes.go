// Package annotations holds the codecs of the structured values Capstan
// writes in annotations (the names are in api/v1alpha1's wellknown.go), so
// that the writer (the injector) and the readers (the translator) share one
// definition.
package annotations

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// OriginalProbes maps each rewritten probe's app-health path to the probe
// as the pod declared it, except that a named port is replaced by its number
// so that whoever serves the path needs nothing else; it is the JSON of the
// capstan.dev/original-probes annotation (meshv1alpha1.AnnotationOriginalProbes).
type OriginalProbes map[string]*corev1.Probe

// Marshal is the annotation value: compact JSON, keys sorted.
func (o OriginalProbes) Marshal() string {
	out, err := json.Marshal(o)
	if err != nil {
		panic("annotations: marshal original probes: " + err.Error()) // API structs always marshal
	}
	return string(out)
}

// ParseOriginalProbes reads the capstan.dev/original-probes annotation of an
// injected pod; a pod without it has none.
func ParseOriginalProbes(pod *corev1.Pod) (OriginalProbes, error) {
	v, ok := pod.Annotations[meshv1alpha1.AnnotationOriginalProbes]
	if !ok {
		return OriginalProbes{}, nil
	}
	var o OriginalProbes
	if err := json.Unmarshal([]byte(v), &o); err != nil {
		return nil, fmt.Errorf("annotation %s: %q is not valid JSON: %w", meshv1alpha1.AnnotationOriginalProbes, v, err)
	}
	return o, nil
}
