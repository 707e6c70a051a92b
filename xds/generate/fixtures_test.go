package generate

import (
	"fmt"

	"github.com/capstanmesh/capstan/xds/ir"
)

// Functional fixture builders for tests, the fuzz target and the benchmark.

const (
	testTrustDomain = "cluster.local"
	testProxyNS     = "default"
)

type serviceOpt func(*ir.Service)

// newService is an HTTP service on port 80 (target 8080) with a cluster IP.
func newService(name, ns string, opts ...serviceOpt) *ir.Service {
	s := &ir.Service{
		Name:       name,
		Namespace:  ns,
		FQDN:       fmt.Sprintf("%s.%s.svc.cluster.local", name, ns),
		ClusterIPs: []string{"10.96.0.1"},
		Ports:      []*ir.ServicePort{{Name: "http", Port: 80, Protocol: ir.ProtocolHTTP, TargetPort: 8080}},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func withClusterIP(ip string) serviceOpt { return func(s *ir.Service) { s.ClusterIPs = []string{ip} } }

// withEndpoints adds n endpoints in 10.<base>.x.y with the service's identity.
func withEndpoints(n int, base int) serviceOpt {
	return func(s *ir.Service) {
		id := ir.SpiffeID(testTrustDomain, s.Namespace, s.Name)
		for i := range n {
			s.Endpoints = append(s.Endpoints, &ir.Endpoint{
				Address:  fmt.Sprintf("10.%d.%d.%d", base%250, i/250, i%250+1),
				Ports:    map[string]uint32{"http": 8080},
				Pod:      fmt.Sprintf("%s/%s-%d", s.Namespace, s.Name, i),
				Labels:   map[string]string{"app": s.Name},
				Identity: id,
			})
		}
		s.Identities = []string{id}
	}
}

// withRoute adds a rule from MeshRoute <ns>/<service name>.
func withRoute(rule string, dests ...*ir.Destination) serviceOpt {
	return func(s *ir.Service) {
		src := ir.ObjectRef{Kind: "MeshRoute", Namespace: s.Namespace, Name: s.Name}
		s.RouteSource = &src
		s.Routes = append(s.Routes, &ir.HTTPRoute{
			Name:         s.Namespace + "/" + s.Name + "/" + rule,
			Source:       src,
			Destinations: dests,
		})
	}
}

func dest(fqdn string, port uint32, subset string, weight uint32) *ir.Destination {
	return &ir.Destination{Service: fqdn, Port: port, Subset: subset, Weight: weight}
}

// newProxy is a sidecar in testProxyNS with one PERMISSIVE HTTP port.
func newProxy() *ir.Proxy {
	return &ir.Proxy{
		ID:             ir.SidecarNodeID("10.0.0.10", "sleep-0", testProxyNS),
		Kind:           ir.ProxySidecar,
		Name:           "sleep-0",
		Namespace:      testProxyNS,
		IP:             "10.0.0.10",
		ServiceAccount: "sleep",
		Identity:       ir.SpiffeID(testTrustDomain, testProxyNS, "sleep"),
		Inbound:        []*ir.InboundPort{{Port: 8080, Protocol: ir.ProtocolHTTP, MTLS: ir.MTLSPermissive}},
	}
}

func newMesh(proxy *ir.Proxy, services ...*ir.Service) *ir.Mesh {
	return &ir.Mesh{TrustDomain: testTrustDomain, MTLSMode: ir.MTLSPermissive, Services: services, Proxies: []*ir.Proxy{proxy}}
}
