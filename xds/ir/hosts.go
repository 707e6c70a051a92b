package ir

import "strings"

// ClusterDomain is the Kubernetes cluster domain of service FQDNs.
const ClusterDomain = "cluster.local"

// ServiceFQDN is name.namespace.svc.cluster.local.
func ServiceFQDN(name, namespace string) string {
	return name + "." + namespace + ".svc." + ClusterDomain
}

// ResolveHost turns a host as written in an object of namespace ns into an FQDN.
// It accepts a short name (resolved in ns), name.namespace, name.namespace.svc
// and name.namespace.svc.cluster.local. Any other host is returned unchanged:
// it names no Service in the mesh. The translator and the admission webhook
// both resolve hosts with it.
func ResolveHost(host, ns string) string {
	parts := strings.Split(host, ".")
	switch {
	case len(parts) == 1:
		return ServiceFQDN(host, ns)
	case len(parts) == 2:
		return ServiceFQDN(parts[0], parts[1])
	case len(parts) == 3 && parts[2] == "svc":
		return ServiceFQDN(parts[0], parts[1])
	default:
		return host
	}
}
