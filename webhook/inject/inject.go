package inject

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/capstanmesh/capstan/api/annotations"
	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// AnnotationDefaultContainer makes kubectl logs and exec pick the application
// rather than the proxy, which non-native mode puts first.
const AnnotationDefaultContainer = "kubectl.kubernetes.io/default-container"

// Inject returns a deep copy of pod with the sidecar added: the capstan-init
// init container first, then the proxy (a native sidecar right after it, or
// the first regular container), the proxy's volumes, HTTP probes pointed at
// the proxy, and the capstan.dev/status annotation. pod is never modified.
//
// An already injected pod (IsInjected) comes back unchanged, so injecting
// twice equals injecting once. A pod Inject refuses gets a *PodError: invalid
// capstan.dev/ annotations (each named with its value), a hostNetwork pod, a
// pod without containers, a capstan.dev/status annotation without the
// containers and volumes it names (or a capstan-proxy container without the
// annotation), a container that would run as the proxy's UID or GID (each
// named with its field), or names Inject would add that the pod already
// uses. Any other error means cfg is invalid.
func Inject(pod *corev1.Pod, cfg Config) (*corev1.Pod, error) {
	if pod == nil {
		return nil, errors.New("no pod")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("injector configuration: %w", err)
	}
	out := pod.DeepCopy()
	if IsInjected(pod) {
		return out, nil
	}
	if err := checkInjectable(pod); err != nil {
		return nil, &PodError{Problems: []string{err.Error()}}
	}
	if problems := ProxyIDClashes(pod); len(problems) > 0 {
		slices.Sort(problems)
		return nil, &PodError{Problems: problems}
	}
	ov, errs := parseOverrides(pod.Annotations)
	proxy, err := proxyContainer(cfg, ov, WorkloadName(pod))
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, newPodError(errs)
	}
	probes := rewriteProbes(&out.Spec)
	addContainers(&out.Spec, cfg, initContainer(cfg, ov), proxy)
	out.Spec.Volumes = append(out.Spec.Volumes, proxyVolumes()...)
	annotate(out, cfg, probes, pod.Spec.Containers[0].Name)
	return out, nil
}

// checkInjectable refuses pods the sidecar cannot be added to.
func checkInjectable(pod *corev1.Pod) error {
	if pod.Spec.HostNetwork {
		return errors.New("pod uses the host network: its capture rules would apply to the node")
	}
	if len(pod.Spec.Containers) == 0 {
		return errors.New("pod has no containers")
	}
	if err := checkStatusMatches(pod); err != nil {
		return err
	}
	if hasContainer(pod.Spec.InitContainers, InitContainerName) || hasContainer(pod.Spec.Containers, InitContainerName) {
		return fmt.Errorf("pod already has a container named %s", InitContainerName)
	}
	for _, v := range proxyVolumes() {
		if slices.ContainsFunc(pod.Spec.Volumes, func(pv corev1.Volume) bool { return pv.Name == v.Name }) {
			return fmt.Errorf("pod already has a volume named %s", v.Name)
		}
	}
	return nil
}

// addContainers puts capstan-init before every other init container and the
// proxy right after it (native) or before every other container.
func addContainers(spec *corev1.PodSpec, cfg Config, initC, proxy corev1.Container) {
	inits := []corev1.Container{initC}
	if cfg.NativeSidecar {
		inits = append(inits, proxy)
	} else {
		spec.Containers = slices.Concat([]corev1.Container{proxy}, spec.Containers)
	}
	spec.InitContainers = slices.Concat(inits, spec.InitContainers)
}

// annotate records the status, the original probes and, when the proxy is
// the first container, the default container for kubectl.
func annotate(pod *corev1.Pod, cfg Config, probes annotations.OriginalProbes, firstApp string) {
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[meshv1alpha1.AnnotationStatus] = statusFor(cfg).marshal()
	if len(probes) > 0 {
		pod.Annotations[meshv1alpha1.AnnotationOriginalProbes] = probes.Marshal()
	}
	if _, set := pod.Annotations[AnnotationDefaultContainer]; !set && !cfg.NativeSidecar {
		pod.Annotations[AnnotationDefaultContainer] = firstApp
	}
}

// PodError is Inject's answer to a pod it refuses: the problems, each naming
// the annotation or field at fault, sorted. The admission handler denies the
// pod with this message; any other error from Inject is the injector's own.
type PodError struct {
	Problems []string
}

func (e *PodError) Error() string { return strings.Join(e.Problems, "; ") }

func newPodError(errs []error) *PodError {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	slices.Sort(msgs)
	return &PodError{Problems: msgs}
}
