package xdsauth

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointservice "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	secretservice "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/capstanmesh/capstan/test/xdsclient"
	"github.com/capstanmesh/capstan/xds/auth/kubeauth"
	"github.com/capstanmesh/capstan/xds/server"
)

// victimKey stands for the victim's workload private key in its "default"
// secret; no real key is needed to see whether it leaks.
const victimKey = "-----BEGIN PRIVATE KEY-----\nVICTIM-KEY-MATERIAL\n-----END PRIVATE KEY-----\n"

// fetchCall is one unary Fetch RPC of a registered discovery service.
type fetchCall struct {
	name    string
	typeURL string
	call    func(ctx context.Context, conn *grpc.ClientConn, req *discoveryv3.DiscoveryRequest, opts ...grpc.CallOption) (*discoveryv3.DiscoveryResponse, error)
}

var fetchCalls = []fetchCall{
	{"FetchSecrets", resourcev3.SecretType, func(ctx context.Context, c *grpc.ClientConn, r *discoveryv3.DiscoveryRequest, o ...grpc.CallOption) (*discoveryv3.DiscoveryResponse, error) {
		return secretservice.NewSecretDiscoveryServiceClient(c).FetchSecrets(ctx, r, o...)
	}},
	{"FetchClusters", resourcev3.ClusterType, func(ctx context.Context, c *grpc.ClientConn, r *discoveryv3.DiscoveryRequest, o ...grpc.CallOption) (*discoveryv3.DiscoveryResponse, error) {
		return clusterservice.NewClusterDiscoveryServiceClient(c).FetchClusters(ctx, r, o...)
	}},
	{"FetchListeners", resourcev3.ListenerType, func(ctx context.Context, c *grpc.ClientConn, r *discoveryv3.DiscoveryRequest, o ...grpc.CallOption) (*discoveryv3.DiscoveryResponse, error) {
		return listenerservice.NewListenerDiscoveryServiceClient(c).FetchListeners(ctx, r, o...)
	}},
	{"FetchRoutes", resourcev3.RouteType, func(ctx context.Context, c *grpc.ClientConn, r *discoveryv3.DiscoveryRequest, o ...grpc.CallOption) (*discoveryv3.DiscoveryResponse, error) {
		return routeservice.NewRouteDiscoveryServiceClient(c).FetchRoutes(ctx, r, o...)
	}},
	{"FetchEndpoints", resourcev3.EndpointType, func(ctx context.Context, c *grpc.ClientConn, r *discoveryv3.DiscoveryRequest, o ...grpc.CallOption) (*discoveryv3.DiscoveryResponse, error) {
		return endpointservice.NewEndpointDiscoveryServiceClient(c).FetchEndpoints(ctx, r, o...)
	}},
}

// publishWithSecret publishes the static cluster and a "default" secret
// holding victimKey.
func (s *xdsServer) publishWithSecret(t *testing.T, nodeID string) {
	t.Helper()
	s.publish(t, nodeID)
	secret := &tlsv3.Secret{Name: "default", Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
		CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "chain"}},
		PrivateKey:       &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: victimKey}},
	}}}
	res := map[string][]types.Resource{resourcev3.ClusterType: {staticCluster()}, resourcev3.SecretType: {secret}}
	if _, err := s.SetProxyResources(nodeID, res); err != nil {
		t.Fatalf("SetProxyResources(%s): %v", nodeID, err)
	}
}

// TestFetchIsRefused: the unary Fetch RPCs of every discovery service,
// called over TLS against the real server with no token, a junk token,
// another pod's token and even the victim's own token, return nothing (in
// particular not the victim's private key) and count as refusals.
func TestFetchIsRefused(t *testing.T) {
	ns := env.NewNamespace(t)
	victim := newWorkload(t, ns, "victim", "victim-0", "10.0.5.1")
	attacker := newWorkload(t, ns, "attacker", "attacker-0", "10.0.5.2")
	s := startTLSServer(t)
	s.publishWithSecret(t, victim.nodeID)
	victimTok, attackerTok := victim.token(t, kubeauth.XDSTokenAudience), attacker.token(t, kubeauth.XDSTokenAudience)

	// The victim's own stream gets its secret: the key is there to leak.
	c := xdsclient.DialDeltaWith(t, s.addr, victim.nodeID, grpc.WithTransportCredentials(
		credentials.NewTLS(&tls.Config{RootCAs: meshRoots(t), ServerName: xdsServiceName})), xdsclient.WithBearerToken(victimTok))
	c.Subscribe(t, resourcev3.SecretType)
	c.WaitFor(t, waitTimeout, func(st xdsclient.State) error {
		if _, ok := st[resourcev3.SecretType]["default"]; !ok {
			return errNotYet
		}
		return nil
	})

	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(
		credentials.NewTLS(&tls.Config{RootCAs: meshRoots(t), ServerName: xdsServiceName})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	tokens := []struct{ name, token string }{
		{"no token", ""}, {"junk token", "junk.junk.junk"}, {"another pod's token", attackerTok}, {"the victim's own token", victimTok},
	}
	for _, fc := range fetchCalls {
		for _, tok := range tokens {
			t.Run(fc.name+" with "+tok.name, func(t *testing.T) {
				before := authFailures(t, server.ReasonUnaryCall)
				opts := []grpc.CallOption{}
				if tok.token != "" {
					opts = append(opts, grpc.PerRPCCredentials(bearer(tok.token)))
				}
				req := &discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: victim.nodeID}, TypeUrl: fc.typeURL, ResourceNames: []string{"default"}}
				ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
				defer cancel()
				resp, err := fc.call(ctx, conn, req, opts...)
				if err == nil || status.Code(err) != codes.PermissionDenied {
					t.Errorf("%s: %v (response %d resources), want PermissionDenied", fc.name, err, len(resp.GetResources()))
				}
				if resp != nil && len(resp.GetResources()) > 0 {
					t.Errorf("%s returned %d resources", fc.name, len(resp.GetResources()))
				}
				if strings.Contains(resp.String(), "VICTIM-KEY-MATERIAL") {
					t.Errorf("%s leaked the victim's private key", fc.name)
				}
				if got := authFailures(t, server.ReasonUnaryCall); got != before+1 {
					t.Errorf("capstan_xds_auth_failures_total{reason=%s} = %v, want %v", server.ReasonUnaryCall, got, before+1)
				}
			})
		}
	}
	s.checkNoTokenLogged(t, victimTok, attackerTok)
}
