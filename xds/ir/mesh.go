package ir

// Mesh is the whole model for one push: every service and every proxy.
// Slices are sorted (services by FQDN, proxies by ID) so output is deterministic.
type Mesh struct {
	// TrustDomain of SPIFFE identities.
	TrustDomain string `json:"trustDomain"`
	// TrustDomainAliases are trust domains whose identities count as this
	// one's; Service.Identities already hold their variants.
	TrustDomainAliases []string `json:"trustDomainAliases,omitempty"`
	// MTLSMode is the mesh-wide default (STRICT or PERMISSIVE).
	MTLSMode MTLSMode `json:"mtlsMode"`
	// StreamIdleTimeout of the sidecars' HTTP streams; nil means the
	// generator's default, 0 none.
	StreamIdleTimeout *Duration `json:"streamIdleTimeout,omitempty"`
	// Telemetry is what the sidecars log and trace.
	Telemetry Telemetry `json:"telemetry,omitzero"`
	// Services in the mesh, sorted by FQDN.
	Services []*Service `json:"services,omitempty"`
	// Proxies known to the mesh, sorted by ID.
	Proxies []*Proxy `json:"proxies,omitempty"`
}

// ObjectRef names the API object a piece of the model came from, so that
// errors found later (in generation) can be reported on it.
type ObjectRef struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// String returns Kind/namespace/name.
func (r ObjectRef) String() string {
	if r.Namespace == "" {
		return r.Kind + "/" + r.Name
	}
	return r.Kind + "/" + r.Namespace + "/" + r.Name
}

// ServiceByFQDN returns the service with that FQDN, or nil.
func (m *Mesh) ServiceByFQDN(fqdn string) *Service {
	for _, s := range m.Services {
		if s.FQDN == fqdn {
			return s
		}
	}
	return nil
}

// ProxyByID returns the proxy with that node ID, or nil.
func (m *Mesh) ProxyByID(id string) *Proxy {
	for _, p := range m.Proxies {
		if p.ID == id {
			return p
		}
	}
	return nil
}

// Telemetry is the sidecars' access logs and tracing.
type Telemetry struct {
	// AccessLog is "" (off), "Text" or "JSON".
	AccessLog string `json:"accessLog,omitempty"`
	// SamplingPercent of requests traced, 0 to 100.
	SamplingPercent float64 `json:"samplingPercent,omitempty"`
	// Collector is the OTLP/gRPC collector's host:port; "" exports no spans.
	Collector string `json:"collector,omitempty"`
}

// Access log formats of Telemetry.AccessLog.
const (
	AccessLogText = "Text"
	AccessLogJSON = "JSON"
)
