package generate

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// defaultStreamIdleTimeout is the stream idle timeout of the sidecars' HTTP
// connection managers when the Mesh does not set one: an hour, not Envoy's
// five minutes, which cut quiet WebSocket, gRPC streaming and server-sent
// events connections. It matches Envoy's default idle timeout of a
// connection without streams, so a quiet stream lasts as long as a quiet
// connection would.
const defaultStreamIdleTimeout = time.Hour

var sharedStreamIdleTimeout = durationpb.New(defaultStreamIdleTimeout)

// streamIdleTimeout is the Mesh's stream idle timeout, or the default.
func streamIdleTimeout(mesh *ir.Mesh) *durationpb.Duration {
	if mesh.StreamIdleTimeout == nil || *mesh.StreamIdleTimeout < 0 {
		return sharedStreamIdleTimeout
	}
	return duration(*mesh.StreamIdleTimeout)
}

// rdsHCM routes by a RouteConfiguration fetched over ADS (outbound ports).
func rdsHCM(statPrefix, routeConfig string, idle *durationpb.Duration, t *httpTelemetry) *hcmv3.HttpConnectionManager {
	m := allowWebsocket(baseHCM(statPrefix, outbound))
	m.StreamIdleTimeout = idle
	t.apply(m)
	m.RouteSpecifier = &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
		ConfigSource:    ads(),
		RouteConfigName: routeConfig,
	}}
	return m
}

// inlineHCM routes by a fixed, embedded RouteConfiguration (inbound and static listeners).
func inlineHCM(statPrefix string, rc *routev3.RouteConfiguration) *hcmv3.HttpConnectionManager {
	m := baseHCM(statPrefix, inbound)
	m.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: rc}
	return m
}

func baseHCM(statPrefix string, d direction) *hcmv3.HttpConnectionManager {
	return &hcmv3.HttpConnectionManager{
		StatPrefix:  statPrefix,
		CodecType:   hcmv3.HttpConnectionManager_AUTO,
		HttpFilters: hcmFilters(d),
	}
}

// allowWebsocket lets applications upgrade connections to WebSocket, as a mesh user expects.
func allowWebsocket(m *hcmv3.HttpConnectionManager) *hcmv3.HttpConnectionManager {
	m.UpgradeConfigs = []*hcmv3.HttpConnectionManager_UpgradeConfig{{UpgradeType: "websocket"}}
	return m
}

// hcmFilter wraps an HTTP connection manager as a network filter.
func hcmFilter(m *hcmv3.HttpConnectionManager) (*listenerv3.Filter, error) {
	return networkFilter(filterHCM, m)
}

// tcpProxyFilter forwards a connection to one cluster.
func tcpProxyFilter(statPrefix, cluster string) (*listenerv3.Filter, error) {
	return networkFilter(filterTCPProxy, tcpProxy(statPrefix, cluster))
}

func tcpProxy(statPrefix, cluster string) *tcpproxyv3.TcpProxy {
	return &tcpproxyv3.TcpProxy{
		StatPrefix:       statPrefix,
		ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: cluster},
	}
}

func networkFilter(name string, m proto.Message) (*listenerv3.Filter, error) {
	a, err := pack(m)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return packedFilter(name, a), nil
}

// packedFilter is a network filter with a config already packed.
func packedFilter(name string, a *anypb.Any) *listenerv3.Filter {
	return &listenerv3.Filter{Name: name, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: a}}
}
