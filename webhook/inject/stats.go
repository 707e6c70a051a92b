package inject

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// The tags that Envoy's stats carry on /stats/prometheus besides its own
// (envoy_cluster_name, envoy_response_code_class, …), set in the bootstrap's
// stats_config: Envoy reads them only there. docs/observability.md lists
// the golden metrics built from them.
const (
	// TagWorkload and TagWorkloadNamespace name the proxy's workload: the
	// source of its outbound metrics, the destination of its inbound ones.
	TagWorkload          = "workload"
	TagWorkloadNamespace = "workload_namespace"
	// The destination of an outbound cluster's metrics, from its
	// alt_stat_name outbound|<port>|<subset>|<name>_<namespace>_svc_… (a
	// Kubernetes name has no underscore, so the name and namespace split).
	TagDestinationService   = "destination_service_name"
	TagDestinationNamespace = "destination_service_namespace"
	TagDestinationPort      = "destination_port"
	TagDestinationSubset    = "destination_subset"
	// TagVirtualHost and TagRoute name a MeshRoute rule's per-route stats
	// (vhost.<host:port>.route.<namespace/meshroute/rule>.*).
	TagVirtualHost = "virtual_host"
	TagRoute       = "route"
	// TagConnectionSecurity is mtls, plaintext or tls (the app's own TLS
	// passed through) on inbound stats, from the stat prefix of the filter
	// chain that took the connection.
	TagConnectionSecurity = "connection_security"
)

type (
	statsConfig struct {
		StatsTags []statsTag `json:"stats_tags"`
	}
	statsTag struct {
		TagName    string `json:"tag_name"`
		Regex      string `json:"regex,omitempty"`
		FixedValue string `json:"fixed_value,omitempty"`
	}
)

// statsTags are the fixed workload tags and the regexes that turn Capstan's
// stat names into labels. Each regex's first group is removed from the
// metric name, its second is the value.
func statsTags(workload string) statsConfig {
	const outbound = `^cluster\.outbound\|`
	return statsConfig{StatsTags: []statsTag{
		{TagName: TagWorkload, FixedValue: escapeExpansion(workload)},
		{TagName: TagWorkloadNamespace, FixedValue: envRef(EnvPodNamespace)},
		{TagName: TagDestinationPort, Regex: outbound + `((\d+))\|`},
		{TagName: TagDestinationSubset, Regex: outbound + `\d+\|(([^|.]*))\|`},
		{TagName: TagDestinationService, Regex: outbound + `\d+\|[^|.]*\|(([^_.]+)_)`},
		{TagName: TagDestinationNamespace, Regex: outbound + `\d+\|[^|.]*\|[^_.]+_(([^_.]+)_)svc_`},
		{TagName: TagVirtualHost, Regex: `^vhost\.((.+?)\.route\.)`},
		{TagName: TagRoute, Regex: `^vhost\..+?\.route\.(([^.]+)\.)`},
		{TagName: TagConnectionSecurity, Regex: `^(?:http|tcp)\.inbound_\d+_((mtls|plaintext|tls))\.`},
	}}
}

// WorkloadName is the name the pod's metrics carry as its workload: its
// app.kubernetes.io/name or app label, else the name of its controller
// (a ReplicaSet's pods by the ReplicaSet's Deployment name, its
// pod-template-hash suffix removed), else its generateName or name.
func WorkloadName(pod *corev1.Pod) string {
	for _, key := range []string{"app.kubernetes.io/name", "app"} {
		if v := pod.Labels[key]; v != "" {
			return v
		}
	}
	for _, ref := range pod.OwnerReferences {
		if ref.Controller == nil || !*ref.Controller {
			continue
		}
		if hash := pod.Labels["pod-template-hash"]; ref.Kind == "ReplicaSet" && hash != "" {
			return strings.TrimSuffix(ref.Name, "-"+hash)
		}
		return ref.Name
	}
	if pod.GenerateName != "" {
		return strings.TrimSuffix(pod.GenerateName, "-")
	}
	return pod.Name
}
