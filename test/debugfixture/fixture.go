// Package debugfixture builds the xDS configuration the debug endpoint's
// tests publish: one resource of each type, a workload certificate with its
// real private key, and the mesh root.
package debugfixture

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/url"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Names of the fixture's resources.
const (
	Listener = "outbound_0.0.0.0_15001"
	Route    = "80"
	Cluster  = "outbound|80||web.shop.svc.cluster.local"
	Cert     = "default"
	Root     = "ROOTCA"
)

// Config is a proxy's configuration and the key material it holds.
type Config struct {
	Resources map[string][]types.Resource
	// CertPEM is the workload certificate; KeyPEM its private key, as published.
	CertPEM, KeyPEM []byte
	// KeyDER is the key's DER bytes, which must not appear either.
	KeyDER []byte
}

// New returns one listener, route, EDS cluster, load assignment, workload
// certificate (with its private key) and root, for the identity spiffeID.
func New(t testing.TB, spiffeID string) Config {
	t.Helper()
	certPEM, keyPEM, keyDER := certificate(t, spiffeID)
	res := map[string][]types.Resource{
		resourcev3.ListenerType: {listener(t)},
		resourcev3.RouteType:    {route()},
		resourcev3.ClusterType:  {cluster()},
		resourcev3.EndpointType: {endpoints()},
		resourcev3.SecretType: {
			&tlsv3.Secret{Name: Cert, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
				CertificateChain: inline(certPEM), PrivateKey: inline(keyPEM),
			}}},
			&tlsv3.Secret{Name: Root, Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				TrustedCa: inline(certPEM),
			}}},
		},
	}
	return Config{Resources: res, CertPEM: certPEM, KeyPEM: keyPEM, KeyDER: keyDER}
}

func inline(b []byte) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: b}}
}

func ads() *corev3.ConfigSource {
	return &corev3.ConfigSource{ResourceApiVersion: corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}
}

func listener(t testing.TB) *listenerv3.Listener {
	router, err := anypb.New(&routerv3.Router{})
	if err != nil {
		t.Fatal(err)
	}
	hcm, err := anypb.New(&hcmv3.HttpConnectionManager{
		StatPrefix: "outbound_80",
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			RouteConfigName: Route, ConfigSource: ads(),
		}},
		HttpFilters: []*hcmv3.HttpFilter{{Name: "envoy.filters.http.router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: router}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &listenerv3.Listener{
		Name: Listener,
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "0.0.0.0", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 15001},
		}}},
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
			Name: "envoy.filters.network.http_connection_manager", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: hcm},
		}}}},
	}
}

func route() *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{Name: Route, VirtualHosts: []*routev3.VirtualHost{{
		Name: "web.shop.svc.cluster.local:80", Domains: []string{"web.shop.svc.cluster.local", "web.shop", "web"},
		Routes: []*routev3.Route{{
			Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: Cluster}}},
		}},
	}}}
}

func cluster() *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 Cluster,
		ConnectTimeout:       durationpb.New(time.Second),
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: ads()},
	}
}

func endpoints() *endpointv3.ClusterLoadAssignment {
	return &endpointv3.ClusterLoadAssignment{ClusterName: Cluster, Endpoints: []*endpointv3.LocalityLbEndpoints{{
		LbEndpoints: []*endpointv3.LbEndpoint{{
			HealthStatus: corev3.HealthStatus_HEALTHY,
			HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
				Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
					Address: "10.0.0.8", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 8080},
				}}},
			}},
		}},
	}}}
}

// certificate is a self-signed certificate for spiffeID and its key.
func certificate(t testing.TB, spiffeID string) (certPEM, keyPEM, keyDER []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := url.Parse(spiffeID)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{Organization: []string{"capstan"}},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(24 * time.Hour), URIs: []*url.URL{id},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err = x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), keyDER
}

// CheckNoKeyMaterial fails the test when out holds the private key in any
// form the JSON or YAML output could carry it: PEM, the base64 of the PEM
// (proto3 JSON's bytes), the base64 of the DER (the PEM body), or any
// "PRIVATE KEY" block.
func (c Config) CheckNoKeyMaterial(t testing.TB, what string, out []byte) {
	t.Helper()
	der64 := base64.StdEncoding.EncodeToString(c.KeyDER)
	forms := map[string]string{
		"PEM":           string(c.KeyPEM),
		"base64 of PEM": base64.StdEncoding.EncodeToString(c.KeyPEM),
		"PEM body":      der64[:48],
		"PEM header":    "PRIVATE KEY",
	}
	for form, s := range forms {
		if bytes.Contains(out, []byte(s)) {
			t.Errorf("%s holds the private key (%s)", what, form)
		}
	}
}
