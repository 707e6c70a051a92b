package generate

import (
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// knownSecrets are the only SDS names this package references.
var knownSecrets = map[string]bool{SecretWorkloadCert: true, SecretRootCA: true}

// sdsSecret references a secret served over ADS.
func sdsSecret(name string) *tlsv3.SdsSecretConfig {
	return &tlsv3.SdsSecretConfig{Name: name, SdsConfig: ads()}
}

// commonTLS presents the workload certificate and verifies peers against the
// root CA and, when sans is not empty, one of the SPIFFE IDs in sans.
func commonTLS(sans []string, alpn []string) *tlsv3.CommonTlsContext {
	validation := &tlsv3.CertificateValidationContext{MatchTypedSubjectAltNames: uriMatchers(sans)}
	return &tlsv3.CommonTlsContext{
		TlsParams:                      &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2},
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{sdsSecret(SecretWorkloadCert)},
		ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{
			CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
				DefaultValidationContext:         validation,
				ValidationContextSdsSecretConfig: sdsSecret(SecretRootCA),
			},
		},
		AlpnProtocols: alpn,
	}
}

// uriMatchers accept a certificate with one of the URI SANs (SPIFFE IDs).
func uriMatchers(ids []string) []*tlsv3.SubjectAltNameMatcher {
	if len(ids) == 0 {
		return nil
	}
	out := make([]*tlsv3.SubjectAltNameMatcher, len(ids))
	for i, id := range ids {
		out[i] = &tlsv3.SubjectAltNameMatcher{
			SanType: tlsv3.SubjectAltNameMatcher_URI,
			Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: id}},
		}
	}
	return out
}

// setUpstreamTLS makes the cluster originate mTLS to a mesh service: when the
// mesh does not disable mTLS and the service's pods have identities, which
// the server certificate must then carry. The service's clusters share one
// transport socket.
func (b *builder) setUpstreamTLS(c *clusterv3.Cluster, s *service) error {
	if b.mesh.MTLSMode == ir.MTLSDisable || len(s.Identities) == 0 {
		return nil
	}
	if s.tls == nil && s.tlsErr == nil {
		s.tls, s.tlsErr = b.upstreamTLSSocket(s.Identities, s.FQDN)
	}
	c.TransportSocket = s.tls
	return s.tlsErr
}

// tlsMessages are the three messages of an upstream TLS transport socket,
// allocated together (see alloc.go).
type tlsMessages struct {
	socket corev3.TransportSocket
	config corev3.TransportSocket_TypedConfig
	any    anypb.Any
}

// upstreamTLSSocket is the transport socket originating mTLS to a service
// with the given SPIFFE IDs and SNI, encoded by upstreamTLS.
func (b *builder) upstreamTLSSocket(sans []string, sni string) (*corev3.TransportSocket, error) {
	if err := upstreamTLS.check(sni); err != nil {
		return nil, err
	}
	m := b.mem.tls.new()
	m.any.TypeUrl = upstreamTLS.typeURL
	l := upstreamTLS.layout(sans, sni)
	m.any.Value = upstreamTLS.encode(b.mem.tlsBytes.slice(l.size)[:0], sans, sni, l)
	m.config.TypedConfig = &m.any
	m.socket.Name, m.socket.ConfigType = transportSocketTLS, &m.config
	return &m.socket, nil
}

// downstreamTLS terminates mTLS on an inbound chain: a client certificate
// signed by the root CA is required; any mesh identity is accepted. Its
// config is a constant per ALPN list, packed once.
func downstreamTLS(http bool) *corev3.TransportSocket {
	a := downstreamTLSConfigs.plain
	if http {
		a = downstreamTLSConfigs.http
	}
	return &corev3.TransportSocket{
		Name:       transportSocketTLS,
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: a},
	}
}

// downstreamTLSConfigs are the DownstreamTlsContext of inbound HTTP ports
// (ALPN h2 and http/1.1) and of the others (no ALPN).
var downstreamTLSConfigs = struct{ http, plain *anypb.Any }{
	http:  constConfig(downstreamTLSContext([]string{"h2", "http/1.1"}), ""),
	plain: constConfig(downstreamTLSContext(nil), ""),
}

func downstreamTLSContext(alpn []string) *tlsv3.DownstreamTlsContext {
	return &tlsv3.DownstreamTlsContext{
		CommonTlsContext:         commonTLS(nil, alpn),
		RequireClientCertificate: wrapperspb.Bool(true),
	}
}
