package inject

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// ShouldInject decides whether pod, created in ns, gets a sidecar, and says
// why. In order: already-injected pods (see IsInjected), hostNetwork pods and pods in the
// operator's namespace are skipped; then the pod label capstan.dev/inject
// ("true" or "false") decides; otherwise the namespace label
// capstan.dev/inject=enabled does. ns may be nil (no labels).
func ShouldInject(pod *corev1.Pod, ns *corev1.Namespace, cfg Config) (bool, string) {
	if pod == nil {
		return false, "no pod"
	}
	namespace := pod.Namespace
	if ns != nil && ns.Name != "" {
		namespace = ns.Name
	}
	switch {
	case IsInjected(pod):
		return false, "already injected"
	case pod.Spec.HostNetwork:
		return false, "pod uses the host network"
	case namespace == cfg.OperatorNamespace:
		return false, fmt.Sprintf("namespace %s is the operator's namespace", namespace)
	}
	label, labelled := pod.Labels[meshv1alpha1.LabelInject]
	switch {
	case labelled && label == "true":
		return true, fmt.Sprintf("pod label %s=true", meshv1alpha1.LabelInject)
	case labelled && label == "false":
		return false, fmt.Sprintf("pod label %s=false", meshv1alpha1.LabelInject)
	}
	ignored := ""
	if labelled {
		ignored = fmt.Sprintf(" (pod label %s=%q ignored: want \"true\" or \"false\")", meshv1alpha1.LabelInject, label)
	}
	if ns != nil && ns.Labels[meshv1alpha1.LabelInject] == meshv1alpha1.InjectEnabled {
		return true, fmt.Sprintf("namespace %s has label %s=%s%s", namespace, meshv1alpha1.LabelInject, meshv1alpha1.InjectEnabled, ignored)
	}
	return false, fmt.Sprintf("namespace %s does not have label %s=%s%s", namespace, meshv1alpha1.LabelInject, meshv1alpha1.InjectEnabled, ignored)
}

// IsInjected reports whether pod already carries the sidecar: its
// capstan.dev/status annotation reads, names capstan-init among the init
// containers and capstan-proxy among the init or regular containers, and
// every container and volume it names is in the pod. A status annotation
// without those (written by hand, or copied) does not count: Inject refuses
// such a pod rather than skip it (see checkStatusMatches).
func IsInjected(pod *corev1.Pod) bool {
	s, ok, err := ParseStatus(pod)
	return ok && err == nil && len(statusMismatch(pod, s)) == 0
}

// HasProxy reports whether pod has a container (init or regular) named
// capstan-proxy, whatever its annotations say.
func HasProxy(pod *corev1.Pod) bool {
	return hasContainer(pod.Spec.InitContainers, meshv1alpha1.ProxyContainerName) ||
		hasContainer(pod.Spec.Containers, meshv1alpha1.ProxyContainerName)
}

func hasContainer(cs []corev1.Container, name string) bool {
	for i := range cs {
		if cs[i].Name == name {
			return true
		}
	}
	return false
}
