package commands

import (
	"testing"

	"github.com/capstanmesh/capstan/cli/analyze"
)

// sidecarStats is a part of a sidecar's /stats/prometheus: inbound
// requests of two HTTP ports and a TCP port by connection security, an
// outbound HTTP counter (no connection_security: not counted), and the
// TLS errors of the inbound and another listener.
const sidecarStats = `# TYPE envoy_http_downstream_rq_total counter
envoy_http_downstream_rq_total{workload="web",connection_security="mtls",envoy_http_conn_manager_prefix="inbound_8080_"} 7
envoy_http_downstream_rq_total{workload="web",connection_security="plaintext",envoy_http_conn_manager_prefix="inbound_8080_"} 3
envoy_http_downstream_rq_total{workload="web",connection_security="plaintext",envoy_http_conn_manager_prefix="inbound_9090_"} 2
envoy_http_downstream_rq_total{workload="web",envoy_http_conn_manager_prefix="outbound_0.0.0.0_80"} 100
# TYPE envoy_tcp_downstream_cx_total counter
envoy_tcp_downstream_cx_total{workload="web",connection_security="tls",envoy_tcp_prefix="inbound_8443_"} 4
envoy_tcp_downstream_cx_total{workload="web",envoy_tcp_prefix="PassthroughCluster"} 9
# TYPE envoy_listener_ssl_connection_error counter
envoy_listener_ssl_connection_error{workload="web",envoy_listener_address="0.0.0.0_15006"} 5
envoy_listener_ssl_connection_error{workload="web",envoy_listener_address="0.0.0.0_15001"} 8
`

func TestParsePodTraffic(t *testing.T) {
	got, err := parsePodTraffic([]byte(sidecarStats))
	if err != nil {
		t.Fatal(err)
	}
	want := analyze.PodTraffic{Mesh: 7, Plaintext: 5, AppTLS: 4, FailedHandshakes: 5}
	if got != want {
		t.Errorf("parsePodTraffic = %+v, want %+v", got, want)
	}
	if _, err := parsePodTraffic([]byte("not{ prometheus")); err == nil {
		t.Error("parsing garbage succeeded")
	}
}

func TestDifference(t *testing.T) {
	before := analyze.PodTraffic{Mesh: 10, Plaintext: 4, FailedHandshakes: 1}
	after := analyze.PodTraffic{Mesh: 15, Plaintext: 4, FailedHandshakes: 3}
	if got, want := difference(after, before), (analyze.PodTraffic{Mesh: 5, FailedHandshakes: 2}); got != want {
		t.Errorf("difference = %+v, want %+v", got, want)
	}
	// A restarted sidecar counts from zero again.
	restarted := analyze.PodTraffic{Mesh: 2, Plaintext: 1}
	if got, want := difference(restarted, before), (analyze.PodTraffic{Mesh: 2, Plaintext: 1}); got != want {
		t.Errorf("difference after a restart = %+v, want %+v", got, want)
	}
}
