package generate

import (
	"net"
	"strconv"

	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// ClusterTraceCollector is the cluster of the OpenTelemetry collector that
// sidecars export spans to (Mesh spec.telemetry.tracing.collector).
const ClusterTraceCollector = "capstan-trace-collector"

// Extension names of the telemetry parts of the HTTP connection managers.
const (
	accessLogStdout = "envoy.access_loggers.stdout"
	tracerOTel      = "envoy.tracers.opentelemetry"
	// traceServiceName names the sidecars in the spans' resource.
	traceServiceName = "capstan-sidecar"
)

// accessLogFields are the JSON access log's keys and their Envoy command
// operators: what a user needs to tell why a request failed (the response
// flags and details: UF upstream connection failure, UH no healthy
// upstream, NR no route, URX retries exhausted, UO overflow…), where it
// went, and its ids to find it in traces.
var accessLogFields = [][2]string{
	{"start_time", "%START_TIME%"},
	{"method", "%REQ(:METHOD)%"},
	{"path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"},
	{"protocol", "%PROTOCOL%"},
	{"response_code", "%RESPONSE_CODE%"},
	{"response_flags", "%RESPONSE_FLAGS%"},
	{"response_code_details", "%RESPONSE_CODE_DETAILS%"},
	{"connection_termination_details", "%CONNECTION_TERMINATION_DETAILS%"},
	{"bytes_received", "%BYTES_RECEIVED%"},
	{"bytes_sent", "%BYTES_SENT%"},
	{"duration_ms", "%DURATION%"},
	{"upstream_service_time_ms", "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%"},
	{"authority", "%REQ(:AUTHORITY)%"},
	{"user_agent", "%REQ(USER-AGENT)%"},
	{"request_id", "%REQ(X-REQUEST-ID)%"},
	{"traceparent", "%REQ(TRACEPARENT)%"},
	{"upstream_cluster", "%UPSTREAM_CLUSTER%"},
	{"upstream_host", "%UPSTREAM_HOST%"},
	{"upstream_transport_failure_reason", "%UPSTREAM_TRANSPORT_FAILURE_REASON%"},
	{"downstream_remote_address", "%DOWNSTREAM_REMOTE_ADDRESS%"},
	{"downstream_peer_uri_san", "%DOWNSTREAM_PEER_URI_SAN%"},
	{"route_name", "%ROUTE_NAME%"},
}

// accessLogText is the Text format: Envoy's default line with the response
// flags, the upstream and the request id.
const accessLogText = `[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" ` +
	`%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% ` +
	`"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER% %ROUTE_NAME% ` +
	`%DOWNSTREAM_REMOTE_ADDRESS% "%DOWNSTREAM_PEER_URI_SAN%"` + "\n"

// httpTelemetry is what every sidecar HTTP connection manager of a mesh
// carries: its access log and tracing, packed once per proxy.
type httpTelemetry struct {
	accessLog []*accesslogv3.AccessLog
	tracing   *hcmv3.HttpConnectionManager_Tracing
}

// telemetryOf builds the access log and tracing of the mesh's sidecars.
func telemetryOf(t ir.Telemetry) (*httpTelemetry, error) {
	out := &httpTelemetry{}
	if t.AccessLog != "" {
		al, err := accessLog(t.AccessLog)
		if err != nil {
			return nil, err
		}
		out.accessLog = []*accesslogv3.AccessLog{al}
	}
	if t.Collector != "" {
		tr, err := tracing(t.SamplingPercent)
		if err != nil {
			return nil, err
		}
		out.tracing = tr
	}
	return out, nil
}

// accessLog writes one line per request to the proxy's stdout.
func accessLog(format string) (*accesslogv3.AccessLog, error) {
	f := &corev3.SubstitutionFormatString{Format: &corev3.SubstitutionFormatString_TextFormatSource{
		TextFormatSource: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: accessLogText}},
	}}
	if format == ir.AccessLogJSON {
		fields := make(map[string]*structpb.Value, len(accessLogFields))
		for _, kv := range accessLogFields {
			fields[kv[0]] = structpb.NewStringValue(kv[1])
		}
		f = &corev3.SubstitutionFormatString{Format: &corev3.SubstitutionFormatString_JsonFormat{
			JsonFormat: &structpb.Struct{Fields: fields},
		}}
	}
	cfg, err := anypb.New(&streamv3.StdoutAccessLog{AccessLogFormat: &streamv3.StdoutAccessLog_LogFormat{LogFormat: f}})
	if err != nil {
		return nil, err
	}
	return &accesslogv3.AccessLog{Name: accessLogStdout, ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: cfg}}, nil
}

// tracing samples requests at the mesh's percentage and exports their
// spans over OTLP/gRPC to the collector cluster. Envoy's OpenTelemetry
// tracer reads and writes W3C traceparent/tracestate; a request already
// sampled upstream (traceparent's flag) stays sampled.
func tracing(samplingPercent float64) (*hcmv3.HttpConnectionManager_Tracing, error) {
	provider, err := anypb.New(&tracev3.OpenTelemetryConfig{
		GrpcService: &corev3.GrpcService{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
			EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: ClusterTraceCollector},
		}},
		ServiceName: traceServiceName,
	})
	if err != nil {
		return nil, err
	}
	return &hcmv3.HttpConnectionManager_Tracing{
		RandomSampling: &typev3.Percent{Value: samplingPercent},
		Provider:       &tracev3.Tracing_Http{Name: tracerOTel, ConfigType: &tracev3.Tracing_Http_TypedConfig{TypedConfig: provider}},
	}, nil
}

// apply sets the telemetry of a sidecar connection manager. Request ids are
// generated when a request has none and kept when it has one, from the
// application (outbound) or from the calling sidecar (inbound), so one id
// follows a request across the mesh.
func (t *httpTelemetry) apply(m *hcmv3.HttpConnectionManager) {
	m.GenerateRequestId = wrapperspb.Bool(true)
	m.PreserveExternalRequestId = true
	m.AccessLog = t.accessLog
	m.Tracing = t.tracing
}

// telemetry is the proxy's connection manager telemetry, built on first use.
func (b *builder) telemetry() *httpTelemetry {
	if b.httpTelemetry != nil {
		return b.httpTelemetry
	}
	t, err := telemetryOf(b.mesh.Telemetry)
	if err != nil {
		b.fail(err)
		t = &httpTelemetry{}
	}
	b.httpTelemetry = t
	return t
}

// traceCollector adds the collector's cluster when spans are exported: the
// address resolved by DNS (or an IP), HTTP/2 for OTLP/gRPC.
func (b *builder) traceCollector() {
	addr := b.mesh.Telemetry.Collector
	if addr == "" {
		return
	}
	host, portText, err := net.SplitHostPort(addr)
	port, perr := strconv.ParseUint(portText, 10, 16)
	if err != nil || perr != nil {
		b.errs.add(&ir.ObjectRef{Kind: "Mesh", Name: "default"}, "trace collector %q is not host:port; spans not exported", addr)
		return
	}
	c := &clusterv3.Cluster{
		Name:                 ClusterTraceCollector,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS},
		ConnectTimeout:       sharedConnectTimeout,
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: ClusterTraceCollector,
			Endpoints: []*endpointv3.LocalityLbEndpoints{{
				LbEndpoints: []*endpointv3.LbEndpoint{lbEndpoint(host, uint32(port))},
			}},
		},
	}
	opts, err := protocolOptions(ir.ProtocolGRPC, nil)
	c.TypedExtensionProtocolOptions = opts
	b.addCluster(c, err)
}
