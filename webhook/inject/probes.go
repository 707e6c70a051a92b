package inject

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/capstanmesh/capstan/api/annotations"
	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// rewriteProbes points the HTTP probes of the application containers (and of
// the pod's own native sidecars) at the proxy's health port, so that the
// kubelet's plaintext requests are not refused under STRICT mTLS, and returns
// the originals. TCP, exec and gRPC probes, probes with a host, and probes
// whose named port the container does not declare are left as they are.
func rewriteProbes(spec *corev1.PodSpec) annotations.OriginalProbes {
	orig := annotations.OriginalProbes{}
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			rewriteContainerProbes(c, orig)
		}
	}
	for i := range spec.Containers {
		rewriteContainerProbes(&spec.Containers[i], orig)
	}
	return orig
}

func rewriteContainerProbes(c *corev1.Container, orig annotations.OriginalProbes) {
	for _, p := range []struct {
		probe **corev1.Probe
		kind  ProbeKind
	}{
		{&c.LivenessProbe, ProbeLiveness},
		{&c.ReadinessProbe, ProbeReadiness},
		{&c.StartupProbe, ProbeStartup},
	} {
		port, ok := rewritable(c, *p.probe)
		if !ok {
			continue
		}
		path := AppHealthPath(c.Name, p.kind)
		orig[path] = (*p.probe).DeepCopy()
		orig[path].HTTPGet.Port = intstr.FromInt32(port)
		*p.probe = appHealthProbe(*p.probe, path)
	}
}

// rewritable reports whether probe is a plain-HTTP probe (HTTPS probes are left
// alone: the proxy forwards probes in plaintext) of the pod's own IP on a
// port (a number, or a name the container declares) other than the proxy's,
// and returns the port's number.
func rewritable(c *corev1.Container, probe *corev1.Probe) (int32, bool) {
	if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Host != "" || probe.HTTPGet.Scheme == corev1.URISchemeHTTPS {
		return 0, false
	}
	port, ok := resolvePort(c, probe.HTTPGet.Port)
	return port, ok && !slices.Contains(wellKnownExcludedInbound, port)
}

// resolvePort returns the number of a probe port, looking names up among the container's ports.
func resolvePort(c *corev1.Container, port intstr.IntOrString) (int32, bool) {
	if port.Type == intstr.Int {
		return port.IntVal, port.IntVal > 0
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

// appHealthProbe is probe, with its timings, asking the proxy's health port at path instead.
func appHealthProbe(probe *corev1.Probe, path string) *corev1.Probe {
	out := probe.DeepCopy()
	out.ProbeHandler = corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
		Path:   path,
		Port:   intstr.FromInt32(meshv1alpha1.PortHealth),
		Scheme: corev1.URISchemeHTTP,
	}}
	return out
}
