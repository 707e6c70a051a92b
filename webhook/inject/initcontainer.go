package inject

import (
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// Environment of the capstan-init container.
const (
	// EnvPodIPs is the pod's IPs (downward API status.podIPs); capstan-init
	// installs IPv6 rules too when one of them is IPv6.
	EnvPodIPs = "POD_IPS"
)

// initContainer installs the traffic capture rules before any other container runs.
func initContainer(cfg Config, ov overrides) corev1.Container {
	inbound := slices.Concat(wellKnownExcludedInbound, ov.excludeInboundPorts)
	slices.Sort(inbound)
	args := []string{
		"--proxy-uid=" + itoa(meshv1alpha1.ProxyUID),
		"--proxy-gid=" + itoa(meshv1alpha1.ProxyUID),
		"--inbound-capture-port=" + itoa(meshv1alpha1.PortInboundCapture),
		"--outbound-capture-port=" + itoa(meshv1alpha1.PortOutboundCapture),
		"--exclude-inbound-ports=" + joinPorts(slices.Compact(inbound)),
	}
	if len(ov.excludeOutboundPorts) > 0 {
		args = append(args, "--exclude-outbound-ports="+joinPorts(ov.excludeOutboundPorts))
	}
	if len(ov.excludeOutboundCIDRs) > 0 {
		args = append(args, "--exclude-outbound-ip-ranges="+joinPrefixes(ov.excludeOutboundCIDRs))
	}
	args = append(args, "--pod-ips="+envRef(EnvPodIPs))
	return corev1.Container{
		Name:    InitContainerName,
		Image:   cfg.InitImage,
		Command: []string{"capstan-init"},
		Args:    args,
		Env: []corev1.EnvVar{{Name: EnvPodIPs, ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "status.podIPs"},
		}}},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("10m"),
				corev1.ResourceMemory: resource.MustParse("16Mi"),
			},
			Limits: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("100m"),
				corev1.ResourceMemory: resource.MustParse("64Mi"),
			},
		},
		SecurityContext: initSecurityContext(),
	}
}

// initSecurityContext grants what iptables-restore needs and nothing else:
// root in the pod's network namespace with NET_ADMIN and NET_RAW.
func initSecurityContext() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsUser:                ptrTo[int64](0),
		RunAsGroup:               ptrTo[int64](0),
		RunAsNonRoot:             ptrTo(false),
		ReadOnlyRootFilesystem:   ptrTo(true),
		AllowPrivilegeEscalation: ptrTo(false),
		Privileged:               ptrTo(false),
		Capabilities: &corev1.Capabilities{
			Add:  []corev1.Capability{"NET_ADMIN", "NET_RAW"},
			Drop: []corev1.Capability{"ALL"},
		},
	}
}

func joinPorts(ports []int32) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = itoa(int64(p))
	}
	return strings.Join(s, ",")
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}
