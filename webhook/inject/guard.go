package inject

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// Checks that keep a pod owner from slipping out of capture while the pod
// looks injected. Each problem names the field at fault.

// statusMismatch lists what the status s claims the injector added but pod
// lacks: capstan-init among the init containers and capstan-proxy among the
// init or regular containers are always required, then every container and
// volume s names.
func statusMismatch(pod *corev1.Pod, s Status) []string {
	var missing []string
	need := func(present bool, what string) {
		if !present && !slices.Contains(missing, what) {
			missing = append(missing, what)
		}
	}
	need(slices.Contains(s.InitContainers, InitContainerName), "init container "+InitContainerName)
	need(slices.Contains(s.InitContainers, meshv1alpha1.ProxyContainerName) ||
		slices.Contains(s.Containers, meshv1alpha1.ProxyContainerName), "container "+meshv1alpha1.ProxyContainerName)
	for _, name := range s.InitContainers {
		need(hasContainer(pod.Spec.InitContainers, name), "init container "+name)
	}
	for _, name := range s.Containers {
		need(hasContainer(pod.Spec.Containers, name), "container "+name)
	}
	for _, name := range s.Volumes {
		need(slices.ContainsFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == name }), "volume "+name)
	}
	return missing
}

// checkStatusMatches refuses a pod that carries the capstan.dev/status
// annotation without everything the injector adds (IsInjected is false), or
// a capstan-proxy container without the annotation: either would make the
// pod look injected to Capstan while nothing captures its traffic.
func checkStatusMatches(pod *corev1.Pod) error {
	s, ok, err := ParseStatus(pod)
	switch {
	case err != nil:
		return fmt.Errorf("%w; only the injector writes it: remove it", err)
	case ok:
		missing := statusMismatch(pod, s)
		if len(missing) == 0 {
			return nil // IsInjected: Inject returned the pod before this check
		}
		return fmt.Errorf("annotation %s says the pod is injected but it lacks %s; only the injector writes it: remove it",
			meshv1alpha1.AnnotationStatus, strings.Join(missing, ", "))
	case HasProxy(pod):
		return fmt.Errorf("pod already has a container named %s but no annotation %s",
			meshv1alpha1.ProxyContainerName, meshv1alpha1.AnnotationStatus)
	}
	return nil
}

// ProxyIDClashes names, with its field, each container of pod other than
// the ones the injector adds (capstan-init, capstan-proxy) that runs as the
// proxy's UID or GID (1337): capstan-init exempts the traffic of both from
// capture, so such a container bypasses the sidecar (and mTLS). Inject
// refuses such pods. A container's own securityContext wins over the pod's,
// as the kubelet applies them; a UID set only in the image (USER) cannot be
// seen here.
func ProxyIDClashes(pod *corev1.Pod) []string {
	var problems []string
	check := func(field string, cs []corev1.Container) {
		for i := range cs {
			if cs[i].Name == InitContainerName || cs[i].Name == meshv1alpha1.ProxyContainerName {
				continue
			}
			problems = append(problems, containerIDProblems(pod, fmt.Sprintf("%s[%d]", field, i), &cs[i])...)
		}
	}
	check("spec.initContainers", pod.Spec.InitContainers)
	check("spec.containers", pod.Spec.Containers)
	return problems
}

func containerIDProblems(pod *corev1.Pod, path string, c *corev1.Container) []string {
	var own, podLevel struct{ uid, gid *int64 }
	if c.SecurityContext != nil {
		own.uid, own.gid = c.SecurityContext.RunAsUser, c.SecurityContext.RunAsGroup
	}
	if pod.Spec.SecurityContext != nil {
		podLevel.uid, podLevel.gid = pod.Spec.SecurityContext.RunAsUser, pod.Spec.SecurityContext.RunAsGroup
	}
	var problems []string
	for _, id := range []struct {
		kind, field  string
		own, fromPod *int64
	}{
		{"UID", "runAsUser", own.uid, podLevel.uid},
		{"GID", "runAsGroup", own.gid, podLevel.gid},
	} {
		where := path + ".securityContext." + id.field
		value := id.own
		if value == nil {
			where, value = "spec.securityContext."+id.field+" (inherited by "+path+")", id.fromPod
		}
		if value != nil && *value == meshv1alpha1.ProxyUID {
			problems = append(problems, fmt.Sprintf(
				"%s is %d, the proxy's %s, whose traffic is never captured: container %s would bypass the sidecar and mTLS; run it as another %s",
				where, *value, id.kind, c.Name, id.kind))
		}
	}
	return problems
}
