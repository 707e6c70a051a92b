package validation

import (
	"fmt"
	"net"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	k8svalidation "k8s.io/apimachinery/pkg/util/validation"
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
// its limits, or the API server would refuse every injected pod; the trace
// collector must be a host and port the sidecars can send to.
func Mesh(m *meshv1alpha1.Mesh) field.ErrorList {
	errs := resources(m.Spec.Proxy.Resources, field.NewPath("spec", "proxy", "resources"))
	return append(errs, TraceCollector(m.Spec.Telemetry.Tracing.Collector)...)
}

// TraceCollector checks spec.telemetry.tracing.collector.
func TraceCollector(addr string) field.ErrorList {
	return collector(addr, field.NewPath("spec", "telemetry", "tracing", "collector"))
}

// collector is empty or host:port, the host a DNS name or an IP address and
// the port 1 to 65535.
func collector(addr string, path *field.Path) field.ErrorList {
	if addr == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return field.ErrorList{field.Invalid(path, addr, "must be host:port")}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return field.ErrorList{field.Invalid(path, addr, "the port must be a number from 1 to 65535")}
	}
	if net.ParseIP(host) == nil && len(k8svalidation.IsDNS1123Subdomain(host)) > 0 {
		return field.ErrorList{field.Invalid(path, addr, "the host must be a DNS name or an IP address")}
	}
	return nil
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
