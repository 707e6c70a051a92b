package generate

import (
	"errors"
	"fmt"
	"slices"

	"github.com/capstanmesh/capstan/xds/ir"
)

// For generates the resources of any proxy with the generator of its kind:
// ForGRPC for proxyless gRPC clients, ForProxy for sidecars.
func For(mesh *ir.Mesh, proxy *ir.Proxy) (*Resources, error) {
	if proxy != nil && proxy.Kind == ir.ProxyGRPC {
		return ForGRPC(mesh, proxy)
	}
	return ForProxy(mesh, proxy)
}

// ForGRPC generates the xDS resources of one proxyless gRPC client: an API
// listener per name the client may dial (host:port), a route configuration
// per service port, an EDS cluster per service port and subset, and their
// load assignments — using only the part of Envoy's API that gRPC
// implements (docs/proxyless-grpc.md).
//
// Errors are reported as ForProxy reports them: (nil, err) when nothing can
// be generated, otherwise the Resources together with an Errors value. Parts
// of an object's config that gRPC cannot honour are left out of the output
// and reported as Warnings on that object, never sent as values a gRPC client
// would reject. The output's cross references are checked here, API
// listeners included (go-control-plane's Snapshot.Consistent does not follow
// them).
func ForGRPC(mesh *ir.Mesh, proxy *ir.Proxy) (*Resources, error) {
	if err := checkGRPCInputs(mesh, proxy); err != nil {
		return nil, err
	}
	g := &grpcBuilder{mesh: mesh, proxy: proxy, targets: map[string]*grpcTarget{}, out: &Resources{}}
	g.services = g.usableServices()
	g.clusters()
	g.listenersAndRoutes()
	g.out.sort()
	if err := g.out.CheckReferences(); err != nil {
		return nil, fmt.Errorf("generate %s: inconsistent output: %w", proxy.ID, err)
	}
	return g.out, g.errs.err()
}

func checkGRPCInputs(mesh *ir.Mesh, proxy *ir.Proxy) error {
	switch {
	case mesh == nil:
		return errors.New("generate: nil mesh")
	case proxy == nil:
		return errors.New("generate: nil proxy")
	case proxy.Kind != ir.ProxyGRPC:
		return fmt.Errorf("generate: proxy %s is of kind %q, not %s", proxy.ID, proxy.Kind, ir.ProxyGRPC)
	}
	if err := proxy.Validate(); err != nil {
		return fmt.Errorf("generate: proxy %q: %w", proxy.ID, err)
	}
	return nil
}

// grpcBuilder holds the state of one ForGRPC call. It reads the model and
// never writes it. gRPC clients are few and their config small, so it is
// built plainly, without the sidecar generator's chunked allocation.
type grpcBuilder struct {
	mesh     *ir.Mesh
	proxy    *ir.Proxy
	services []*grpcService
	// targets are the clusters generated, by name.
	targets map[string]*grpcTarget
	out     *Resources
	errs    errorList
}

// grpcService is a model service with its usable ports.
type grpcService struct {
	*ir.Service
	ports []*ir.ServicePort
}

// grpcTarget is what one cluster sends to, and the policy it was generated with.
type grpcTarget struct {
	name    string
	service *grpcService
	port    *ir.ServicePort
	subset  *ir.Subset
	// policy is the traffic policy sent, nil when none was or it was dropped.
	policy *ir.TrafficPolicy
}

// usableServices are the services sorted by FQDN, without those whose FQDN
// is empty or taken, each with its valid ports.
func (g *grpcBuilder) usableServices() []*grpcService {
	in := slices.Clone(g.mesh.Services)
	slices.SortStableFunc(in, func(x, y *ir.Service) int {
		if x == nil || y == nil {
			return boolCompare(x == nil, y == nil)
		}
		return byFQDN(x, y)
	})
	out := make([]*grpcService, 0, len(in))
	last := ""
	for _, s := range in {
		if s == nil {
			continue
		}
		if s.FQDN == "" || s.FQDN == last {
			g.errs.add(serviceRef(s), "fqdn %q is empty or used by another service; service skipped", s.FQDN)
			continue
		}
		last = s.FQDN
		out = append(out, &grpcService{Service: s, ports: g.validPorts(s)})
	}
	return out
}

func boolCompare(x, y bool) int {
	switch {
	case x == y:
		return 0
	case x:
		return 1
	}
	return -1
}

func (g *grpcBuilder) validPorts(s *ir.Service) []*ir.ServicePort {
	out := make([]*ir.ServicePort, 0, len(s.Ports))
	for _, p := range s.Ports {
		if !validPort(p, out) {
			g.errs.add(serviceRef(s), "port %v is out of range or repeated; port skipped", portNumber(p))
			continue
		}
		out = append(out, p)
	}
	return out
}

// target returns the cluster generated for a destination reached through port, or nil.
func (g *grpcBuilder) target(d *ir.Destination, port uint32) *grpcTarget {
	return g.targets[destinationCluster(d, port)]
}

// policySource is the DestinationPolicy of a service, for errors and warnings.
func policySource(s *ir.Service) *ir.ObjectRef {
	if s.PolicySource == nil {
		return serviceRef(s)
	}
	return refOf(*s.PolicySource)
}

// notSent is the wording of every warning about a part left out for gRPC clients.
const notSent = "not supported by proxyless gRPC clients and is not sent to them"
