package debug

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/proto"

	"github.com/capstanmesh/capstan/xds/debugapi"
)

// maxListed bounds the items a summary cell names.
const maxListed = 3

var summarizers = map[string]summarizer{
	debugapi.TypeListeners: {columns: []string{"ADDRESS", "FILTER CHAINS"}, summary: listenerSummary},
	debugapi.TypeRoutes:    {columns: []string{"VIRTUAL HOSTS", "DOMAINS"}, summary: routeSummary},
	debugapi.TypeClusters:  {columns: []string{"TYPE", "TLS", "OUTLIER DETECTION"}, summary: clusterSummary},
	debugapi.TypeEndpoints: {columns: []string{"ENDPOINTS"}, summary: endpointSummary},
	debugapi.TypeSecrets:   {columns: []string{"KIND", "SUBJECT", "NOT AFTER"}, summary: secretSummary, redact: redactSecret},
}

func listenerSummary(m proto.Message) []string {
	l, _ := m.(*listenerv3.Listener)
	addr := "-"
	if sa := l.GetAddress().GetSocketAddress(); sa != nil {
		addr = net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue())))
	}
	if l.GetApiListener() != nil {
		addr = "api listener"
	}
	return []string{addr, strconv.Itoa(len(l.GetFilterChains()))}
}

func routeSummary(m proto.Message) []string {
	rc, _ := m.(*routev3.RouteConfiguration)
	var domains []string
	for _, vh := range rc.GetVirtualHosts() {
		domains = append(domains, vh.GetDomains()...)
	}
	return []string{strconv.Itoa(len(rc.GetVirtualHosts())), listed(domains)}
}

func clusterSummary(m proto.Message) []string {
	c, _ := m.(*clusterv3.Cluster)
	typ := strings.ToUpper(c.GetType().String())
	if c.GetEdsClusterConfig() != nil {
		typ = "EDS"
	}
	tls := "-"
	switch {
	case c.GetTransportSocket() != nil:
		tls = "mTLS"
	case len(c.GetTransportSocketMatches()) > 0:
		tls = "mTLS to endpoints with a sidecar"
	}
	outlier := "-"
	if od := c.GetOutlierDetection(); od != nil {
		outlier = fmt.Sprintf("max ejection %d%%", od.GetMaxEjectionPercent().GetValue())
	}
	return []string{typ, tls, outlier}
}

func endpointSummary(m proto.Message) []string {
	cla, _ := m.(*endpointv3.ClusterLoadAssignment)
	var eps []string
	for _, le := range cla.GetEndpoints() {
		for _, lb := range le.GetLbEndpoints() {
			sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
			ep := net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue())))
			if hs := lb.GetHealthStatus(); hs != corev3.HealthStatus_UNKNOWN {
				ep += " " + hs.String()
			}
			eps = append(eps, ep)
		}
	}
	return []string{listed(eps)}
}

func secretSummary(m proto.Message) []string {
	s, _ := m.(*tlsv3.Secret)
	switch {
	case s.GetTlsCertificate() != nil:
		subject, notAfter := certSummary(s.GetTlsCertificate().GetCertificateChain().GetInlineBytes())
		return []string{"certificate", subject, notAfter}
	case s.GetValidationContext() != nil:
		subject, notAfter := certSummary(s.GetValidationContext().GetTrustedCa().GetInlineBytes())
		return []string{"trusted CA", subject, notAfter}
	}
	return []string{"other", "-", "-"}
}

// certSummary names the first certificate of a PEM chain (its URI SANs,
// else its subject) and when it expires; how many more there are.
func certSummary(chain []byte) (subject, notAfter string) {
	var certs []*x509.Certificate
	for rest := chain; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil && b.Type == "CERTIFICATE" {
			certs = append(certs, c)
		}
	}
	if len(certs) == 0 {
		return "-", "-"
	}
	c := certs[0]
	subject = c.Subject.String()
	if len(c.URIs) > 0 {
		subject = c.URIs[0].String()
	}
	if len(certs) > 1 {
		subject += fmt.Sprintf(" (+%d)", len(certs)-1)
	}
	return subject, c.NotAfter.UTC().Format(time.RFC3339)
}

// redactSecret keeps what is public of a secret: the certificate chain and
// validation contexts. Private keys, key passwords, private key providers,
// session ticket keys and generic secrets never leave the operator.
func redactSecret(r types.Resource) types.Resource {
	s, ok := r.(*tlsv3.Secret)
	if !ok {
		return &tlsv3.Secret{}
	}
	out := &tlsv3.Secret{Name: s.GetName()}
	switch {
	case s.GetTlsCertificate() != nil:
		out.Type = &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: s.GetTlsCertificate().GetCertificateChain(),
		}}
	case s.GetValidationContext() != nil:
		out.Type = &tlsv3.Secret_ValidationContext{ValidationContext: s.GetValidationContext()}
	}
	return out
}

// listed joins the first maxListed items and counts the others.
func listed(items []string) string {
	if len(items) == 0 {
		return "-"
	}
	if len(items) <= maxListed {
		return strings.Join(items, ",")
	}
	return strings.Join(items[:maxListed], ",") + fmt.Sprintf(" (+%d)", len(items)-maxListed)
}
