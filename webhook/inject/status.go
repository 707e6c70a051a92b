package inject

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// Status is the JSON of the capstan.dev/status annotation: what Inject added,
// and which version of Capstan added it.
type Status struct {
	Version        string   `json:"version"`
	InitContainers []string `json:"initContainers"`
	Containers     []string `json:"containers"`
	Volumes        []string `json:"volumes"`
}

// statusFor records what was added, in the order it was added.
func statusFor(cfg Config) Status {
	s := Status{
		Version:        cfg.Version,
		InitContainers: []string{InitContainerName},
		Containers:     []string{},
	}
	if cfg.NativeSidecar {
		s.InitContainers = append(s.InitContainers, meshv1alpha1.ProxyContainerName)
	} else {
		s.Containers = append(s.Containers, meshv1alpha1.ProxyContainerName)
	}
	for _, v := range proxyVolumes() {
		s.Volumes = append(s.Volumes, v.Name)
	}
	return s
}

func (s Status) marshal() string {
	out, err := json.Marshal(s)
	if err != nil {
		panic("inject: marshal status: " + err.Error()) // strings always marshal
	}
	return string(out)
}

// ParseStatus reads the capstan.dev/status annotation; ok is false when the
// pod has none.
func ParseStatus(pod *corev1.Pod) (s Status, ok bool, err error) {
	v, ok := pod.Annotations[meshv1alpha1.AnnotationStatus]
	if !ok {
		return Status{}, false, nil
	}
	if err := json.Unmarshal([]byte(v), &s); err != nil {
		return Status{}, true, fmt.Errorf("annotation %s: %q is not valid JSON: %w", meshv1alpha1.AnnotationStatus, v, err)
	}
	return s, true, nil
}
