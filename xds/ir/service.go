package ir

import "fmt"

// Protocol is an application protocol of a service port.
type Protocol string

// Protocols, from the Service port's appProtocol or name prefix.
const (
	ProtocolHTTP  Protocol = "HTTP"
	ProtocolHTTP2 Protocol = "HTTP2"
	ProtocolGRPC  Protocol = "GRPC"
	ProtocolTCP   Protocol = "TCP"
)

// IsHTTP reports whether the protocol is routed at layer 7.
func (p Protocol) IsHTTP() bool { return p == ProtocolHTTP || p == ProtocolHTTP2 || p == ProtocolGRPC }

// Service is a Kubernetes Service in the mesh.
type Service struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// FQDN is name.namespace.svc.<cluster domain>.
	FQDN string `json:"fqdn"`
	// ClusterIPs of the service; empty for a headless service.
	ClusterIPs []string `json:"clusterIPs,omitempty"`
	// Headless services route straight to endpoint addresses.
	Headless bool           `json:"headless,omitempty"`
	Ports    []*ServicePort `json:"ports"`
	// Endpoints are the ready endpoints, sorted by address.
	Endpoints []*Endpoint `json:"endpoints,omitempty"`
	// Policy is the default traffic policy (from a DestinationPolicy), if any.
	Policy *TrafficPolicy `json:"policy,omitempty"`
	// PolicySource is the DestinationPolicy that set Policy and Subsets.
	PolicySource *ObjectRef `json:"policySource,omitempty"`
	// Subsets are named groups of endpoints, sorted by name.
	Subsets []*Subset `json:"subsets,omitempty"`
	// Routes are the HTTP rules for this host, in match order; empty means a default route.
	Routes []*HTTPRoute `json:"routes,omitempty"`
	// RouteSource is the MeshRoute that owns this host, if any.
	RouteSource *ObjectRef `json:"routeSource,omitempty"`
	// Identities are the SPIFFE IDs of the pods behind the service, sorted; clients verify them.
	Identities []string `json:"identities,omitempty"`
}

// ServicePort is one port of a service.
type ServicePort struct {
	Name     string   `json:"name,omitempty"`
	Port     uint32   `json:"port"`
	Protocol Protocol `json:"protocol"`
	// TargetPort is the numeric container port when the Service names a number; 0 when it names a port by name.
	TargetPort uint32 `json:"targetPort,omitempty"`
}

// Endpoint is one ready backend of a service.
type Endpoint struct {
	Address string `json:"address"`
	// Ports maps service port name to the endpoint's port number.
	Ports map[string]uint32 `json:"ports"`
	Zone  string            `json:"zone,omitempty"`
	// Pod behind the endpoint, "namespace/name", if any.
	Pod string `json:"pod,omitempty"`
	// Labels of the pod, used to pick subsets.
	Labels map[string]string `json:"labels,omitempty"`
	// Identity is the SPIFFE ID of the pod, if known.
	Identity string `json:"identity,omitempty"`
}

// Subset is a named group of a service's endpoints.
type Subset struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
	// Policy is the effective traffic policy of the subset (the service's, overridden by the subset's).
	Policy *TrafficPolicy `json:"policy,omitempty"`
}

// PortByNumber returns the service port with that number, or nil.
func (s *Service) PortByNumber(port uint32) *ServicePort {
	for _, p := range s.Ports {
		if p.Port == port {
			return p
		}
	}
	return nil
}

// SubsetByName returns the subset with that name, or nil.
func (s *Service) SubsetByName(name string) *Subset {
	for _, ss := range s.Subsets {
		if ss.Name == name {
			return ss
		}
	}
	return nil
}

// EndpointsOf returns the endpoints whose labels include every label of the subset;
// every endpoint when subset is nil.
func (s *Service) EndpointsOf(subset *Subset) []*Endpoint {
	if subset == nil {
		return s.Endpoints
	}
	var out []*Endpoint
	for _, e := range s.Endpoints {
		if labelsMatch(subset.Labels, e.Labels) {
			out = append(out, e)
		}
	}
	return out
}

func labelsMatch(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// ClusterName is the name of the outbound cluster for a service port and optional subset,
// "outbound|<port>|<subset>|<fqdn>".
func ClusterName(fqdn string, port uint32, subset string) string {
	return fmt.Sprintf("outbound|%d|%s|%s", port, subset, fqdn)
}
