package meshmetrics

// SidecarMetrics are the sidecar series (Envoy's /stats/prometheus on
// 15090, with the bootstrap's tags) that config/prometheus and
// config/grafana use. test/dataplane checks that real sidecars export each
// one; test/observability that the rules and dashboards use no other.
var SidecarMetrics = []string{
	"envoy_cluster_upstream_rq_xx",
	"envoy_cluster_upstream_rq_time_bucket",
	"envoy_cluster_upstream_cx_total",
	"envoy_cluster_ssl_handshake",
	"envoy_vhost_upstream_rq_xx",
	"envoy_vhost_upstream_rq_time_bucket",
	"envoy_http_downstream_rq_xx",
	"envoy_http_downstream_rq_time_bucket",
	"envoy_control_plane_connected_state",
}

// ManagerMetrics are the manager's series (its metrics endpoint) that
// config/prometheus and config/grafana use: Capstan's own and
// controller-runtime's.
var ManagerMetrics = []string{
	TranslationDuration + "_bucket",
	GenerationDuration + "_bucket",
	ProxiesGenerated,
	CertificateExpiry,
	PodsWithoutSidecar,
	ConnectedProxies,
	Pushes,
	NACKs,
	Convergence + "_bucket",
	"capstan_xds_connections",
	AuthFailures,
	ConnectionsRefused,
	"capstan_injection_duration_seconds_count",
	"capstan_injection_duration_seconds_bucket",
	"controller_runtime_webhook_latency_seconds_bucket",
	"controller_runtime_reconcile_total",
	"controller_runtime_reconcile_errors_total",
}
