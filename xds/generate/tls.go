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
		TlsParams:                      tlsParams(tlsv3.TlsParameters_TLSv1_2),
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

// TLS between sidecars. Both ends are Envoy, which negotiates TLS 1.3 (a
// client's maximum would otherwise be TLS 1.2, Envoy's client default).
// TLS 1.2 stays allowed, except on STRICT inbound ports (only sidecars
// connect there), with forward-secret AEAD suites only. The key exchange
// prefers the post-quantum hybrid X25519MLKEM768 (BoringSSL in Envoy 1.40
// supports it), then X25519 and P-256 for peers without it.
var (
	tlsECDHCurves   = []string{"X25519MLKEM768", "X25519", "P-256"}
	tlsCipherSuites = []string{
		"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
		"ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
		"ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
	}
)

// tlsParams are the protocol versions, TLS 1.2 cipher suites and key
// exchange groups of every mesh TLS context, from min up to TLS 1.3.
func tlsParams(minVersion tlsv3.TlsParameters_TlsProtocol) *tlsv3.TlsParameters {
	return &tlsv3.TlsParameters{
		TlsMinimumProtocolVersion: minVersion,
		TlsMaximumProtocolVersion: tlsv3.TlsParameters_TLSv1_3,
		CipherSuites:              tlsCipherSuites,
		EcdhCurves:                tlsECDHCurves,
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

// ALPNMesh is the ALPN protocol a client sidecar offers when it originates
// mesh mTLS. A PERMISSIVE inbound port terminates only TLS that offers it:
// other TLS (a client of an application that speaks TLS itself) passes
// through to the application untouched.
const ALPNMesh = "capstan-mtls"

// meshALPN is the ALPN list of every upstream mesh TLS context. The server
// sidecar offers h2 and http/1.1 on HTTP ports, so no protocol is
// negotiated: its connection manager detects HTTP/2 by the preface.
var meshALPN = []string{ALPNMesh}

// setUpstreamTLS makes the cluster originate mTLS to a mesh service: when the
// mesh does not disable mTLS and the service's pods have identities, which
// the server certificate must then carry. The service's clusters share one
// transport socket. When only some of the service's endpoints have a sidecar
// (a rollout of injection), the cluster decides per endpoint
// (setTLSPerEndpoint).
func (b *builder) setUpstreamTLS(c *clusterv3.Cluster, s *service) error {
	if b.mesh.MTLSMode == ir.MTLSDisable || len(s.Identities) == 0 {
		return nil
	}
	if s.tls == nil && s.tlsErr == nil {
		s.tls, s.tlsErr = b.upstreamTLSSocket(s.Identities, s.FQDN)
	}
	if s.tlsErr != nil {
		return s.tlsErr
	}
	if b.tlsPerEndpoint(s) {
		setTLSPerEndpoint(c, s.tls)
		return nil
	}
	c.TransportSocket = s.tls
	return nil
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
func downstreamTLS(http, strict bool) *corev3.TransportSocket {
	a := downstreamTLSConfigs[downstreamTLSKind{http: http, strict: strict}]

	return &corev3.TransportSocket{
		Name:       transportSocketTLS,
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: a},
	}
}

// downstreamTLSKind tells the four DownstreamTlsContexts apart: HTTP ports
// offer ALPN h2 and http/1.1 (others no ALPN); STRICT ports require TLS 1.3.
type downstreamTLSKind struct{ http, strict bool }

// downstreamTLSConfigs are the four contexts, packed once.
var downstreamTLSConfigs = func() map[downstreamTLSKind]*anypb.Any {
	out := map[downstreamTLSKind]*anypb.Any{}
	for _, http := range []bool{false, true} {
		for _, strict := range []bool{false, true} {
			out[downstreamTLSKind{http, strict}] = constConfig(downstreamTLSContext(http, strict), "")
		}
	}
	return out
}()

func downstreamTLSContext(http, strict bool) *tlsv3.DownstreamTlsContext {
	var alpn []string
	if http {
		alpn = []string{"h2", "http/1.1"}
	}
	ctx := commonTLS(nil, alpn)
	if strict {
		ctx.TlsParams = tlsParams(tlsv3.TlsParameters_TLSv1_3)
	}
	return &tlsv3.DownstreamTlsContext{CommonTlsContext: ctx, RequireClientCertificate: wrapperspb.Bool(true)}
}
