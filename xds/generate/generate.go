package generate

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// ForProxy generates the Envoy resources of one sidecar.
//
// It returns (nil, err) only when nothing can be generated: a nil mesh or
// proxy, an invalid proxy, a proxy that is not a sidecar, or — a bug — output
// that fails the final reference check.
//
// Problems that belong to one API object (a route to a cluster that does not
// exist, a policy Envoy rejects, a service port out of range…) do not stop
// generation. The offending piece is left out or replaced (see docs/generate.md),
// every other object still gets its config, and ForProxy returns the usable
// Resources together with an Errors value listing each problem with its
// source object:
//
//	res, err := generate.ForProxy(mesh, proxy)
//	var perObject generate.Errors
//	switch {
//	case errors.As(err, &perObject): // res is complete and valid for everything else
//	case err != nil:                 // res is nil
//	}
func ForProxy(mesh *ir.Mesh, proxy *ir.Proxy) (*Resources, error) {
	if err := checkInputs(mesh, proxy); err != nil {
		return nil, err
	}
	b := newBuilder(mesh, proxy)
	b.outboundClusters()
	b.outboundRoutes()
	b.outboundListeners()
	b.inbound()
	b.static()
	b.traceCollector()
	if b.fatal != nil {
		return nil, fmt.Errorf("generate %s: %w", proxy.ID, b.fatal)
	}
	b.out.sort()
	if err := b.out.checkReferences(false); err != nil {
		return nil, fmt.Errorf("generate %s: inconsistent output: %w", proxy.ID, err)
	}
	return b.out, b.errs.err()
}

// addListener validates and adds a listener. Listeners are built from checked
// parts only, so a failure here is a bug and voids the whole output.
func (b *builder) addListener(l *listenerv3.Listener, err error) {
	if err == nil {
		err = l.ValidateAll()
	}
	if err != nil {
		b.fail(fmt.Errorf("listener %s: %w", l.GetName(), err))
		return
	}
	b.out.Listeners = append(b.out.Listeners, l)
}

// fail records the first failure that is no object's fault.
func (b *builder) fail(err error) {
	if b.fatal == nil {
		b.fatal = err
	}
}

func checkInputs(mesh *ir.Mesh, proxy *ir.Proxy) error {
	switch {
	case mesh == nil:
		return errors.New("generate: nil mesh")
	case proxy == nil:
		return errors.New("generate: nil proxy")
	case proxy.Kind != "" && proxy.Kind != ir.ProxySidecar:
		return fmt.Errorf("generate: proxy %s is of kind %s, not %s", proxy.ID, proxy.Kind, ir.ProxySidecar)
	}
	if err := proxy.Validate(); err != nil {
		return fmt.Errorf("generate: proxy %q: %w", proxy.ID, err)
	}
	return nil
}

// builder holds the state of one ForProxy call. It reads the model and never writes it.
type builder struct {
	mesh     *ir.Mesh
	proxy    *ir.Proxy
	services []*service
	// targets are the outbound clusters generated so far, by name.
	targets map[string]*target
	// budgets are the retry budgets routes ask of their destination clusters, by cluster name.
	budgets map[string]*ir.RetryBudget
	// groups are the service ports by number (portGroups).
	groups []*portGroup
	// routeNames are the outbound route configurations generated.
	routeNames map[string]bool
	// mem holds the output's messages and strings (alloc.go).
	mem *memory
	// scratch is where names are assembled before they are stored or looked up.
	scratch []byte
	// endpointScratch and zoneScratch are reused by each loadAssignment.
	endpointScratch []usableEndpoint
	zoneScratch     []zone
	// localities are the Locality messages by zone, shared by the endpoint groups.
	localities map[string]*corev3.Locality
	// portEndpoints lets subset clusters share the endpoint messages of their base cluster.
	portEndpoints endpointCache
	// podMetadata are the endpoints' metadata by pod (endpointMetadata).
	podMetadata map[string]*corev3.Metadata
	// podTLSMetadata are the metadata of endpoints marked for mTLS, by
	// endpoint (endpointMetadataOf).
	podTLSMetadata map[*ir.Endpoint]*corev3.Metadata
	out            *Resources
	errs           errorList
	// httpTelemetry is the connection managers' access log and tracing (telemetry).
	httpTelemetry *httpTelemetry
	// fatal is the first failure that is no object's fault (a bug); it voids the output.
	fatal error
	// sel, when set, is what Partial generates; selectedClusters the
	// clusters of selected services it keeps.
	sel              *Selection
	selectedClusters []*clusterv3.Cluster
}

// service is a model service with the parts generation can use, worked out
// once per ForProxy call.
type service struct {
	*ir.Service
	// validPorts are the service's ports that are in range and not repeated.
	validPorts []*ir.ServicePort
	// ips are the parsed ClusterIPs.
	ips []netip.Addr
	// plainNames is true when the names that make up the service's domains
	// (FQDN, and name and namespace when both are set) are plain ASCII
	// without upper case, ':', NUL, CR or LF (see plainNames).
	plainNames bool
	// tls (or tlsErr) is the upstream TLS transport socket of the service's
	// clusters, built by the first of them and shared by the others.
	tls    *corev3.TransportSocket
	tlsErr error
	// mixedTLS caches tlsPerEndpoint (cluster_tls_match.go).
	mixedTLS mixedState
}

// target is what one outbound cluster sends to.
type target struct {
	// name is the cluster name, ir.ClusterName.
	name    string
	service *service
	port    *ir.ServicePort
	subset  *ir.Subset
	// policy is the traffic policy the cluster was generated with: the model's,
	// or nil when Envoy rejected it. Routes take their hash policy from it.
	policy *ir.TrafficPolicy
}

func (b *builder) newTarget(s *service, p *ir.ServicePort, subset *ir.Subset) *target {
	t := b.mem.targets.new()
	t.service, t.port, t.subset = s, p, subset
	sub := ""
	if subset != nil {
		sub = subset.Name
	}
	t.name = b.clusterName(s.FQDN, p.Port, sub)
	return t
}

// clusterName is ir.ClusterName, stored with the output's strings.
func (b *builder) clusterName(fqdn string, port uint32, subset string) string {
	b.scratch = appendClusterName(b.scratch[:0], fqdn, port, subset)
	return b.mem.text.string(b.scratch)
}

// target returns the outbound cluster generated for a service port and
// subset, or nil. The lookup allocates nothing.
func (b *builder) target(fqdn string, port uint32, subset string) *target {
	b.scratch = appendClusterName(b.scratch[:0], fqdn, port, subset)
	return b.targets[string(b.scratch)]
}

// modelPolicy is the traffic policy the model asks for: the subset's, else the service's.
func (t *target) modelPolicy() *ir.TrafficPolicy {
	if t.subset != nil {
		return t.subset.Policy
	}
	return t.service.Policy
}

func newBuilder(mesh *ir.Mesh, proxy *ir.Proxy) *builder {
	b := &builder{
		mesh:       mesh,
		proxy:      proxy,
		routeNames: map[string]bool{},
		out:        &Resources{},
	}
	b.services = b.usableServices()
	b.mem = b.newMemory()
	b.targets = make(map[string]*target, b.mem.size.targets)
	b.out.Clusters = make([]*clusterv3.Cluster, 0, b.mem.size.targets+len(proxy.Inbound)+3)
	b.out.Endpoints = make([]*endpointv3.ClusterLoadAssignment, 0, b.mem.size.targets)
	b.budgets = b.retryBudgets()
	return b
}

// usableServices returns the services in the proxy's scope (scopedServices)
// sorted by FQDN, reporting and skipping services without an FQDN or with an
// FQDN already taken.
func (b *builder) usableServices() []*service {
	in := scopedServices(b.mesh.Services, b.proxy.Scope)
	if !slices.IsSortedFunc(in, byFQDN) {
		in = slices.Clone(in)
		slices.SortStableFunc(in, byFQDN)
	}
	out := make([]*service, 0, len(in))
	store := make([]service, len(in))
	addrs := make([]netip.Addr, 0, clusterIPCount(in))
	last := "" // the FQDNs are sorted: a repeated one follows the one it repeats
	for i, s := range in {
		if s == nil {
			continue
		}
		if s.FQDN == "" || s.FQDN == last {
			b.errs.add(serviceRef(s), "fqdn %q is empty or used by another service; service skipped", s.FQDN)
			continue
		}
		last = s.FQDN
		sv := &store[i]
		sv.Service, sv.validPorts, sv.plainNames = s, b.validPorts(s), plainNames(s)
		sv.ips, addrs = b.parseIPs(s, addrs)
		out = append(out, sv)
	}
	return out
}

func byFQDN(x, y *ir.Service) int { return cmp.Compare(x.FQDN, y.FQDN) }

func clusterIPCount(services []*ir.Service) int {
	n := 0
	for _, s := range services {
		if s != nil {
			n += len(s.ClusterIPs)
		}
	}
	return n
}

// validPorts returns the service's ports that are in range and not repeated:
// s.Ports itself when they all are (it is only read).
func (b *builder) validPorts(s *ir.Service) []*ir.ServicePort {
	if allValidPorts(s.Ports) {
		return s.Ports
	}
	out := make([]*ir.ServicePort, 0, len(s.Ports))
	for _, p := range s.Ports {
		if !validPort(p, out) {
			b.errs.add(serviceRef(s), "port %v is out of range or repeated; port skipped", portNumber(p))
			continue
		}
		out = append(out, p)
	}
	return out
}

func allValidPorts(ports []*ir.ServicePort) bool {
	for i, p := range ports {
		if !validPort(p, ports[:i]) {
			return false
		}
	}
	return true
}

// validPort reports whether p is in range and not repeated from earlier (valid) ports.
func validPort(p *ir.ServicePort, earlier []*ir.ServicePort) bool {
	return p != nil && p.Port != 0 && p.Port <= 65535 && !slices.ContainsFunc(earlier, samePort(p.Port))
}

func samePort(port uint32) func(*ir.ServicePort) bool {
	return func(p *ir.ServicePort) bool { return p.Port == port }
}

func portNumber(p *ir.ServicePort) any {
	if p == nil {
		return nil
	}
	return p.Port
}

// parseIPs parses the cluster IPs into the free room of addrs, returning them
// and what is left of addrs.
func (b *builder) parseIPs(s *ir.Service, addrs []netip.Addr) (ips, rest []netip.Addr) {
	start := len(addrs)
	for _, ip := range s.ClusterIPs {
		a, err := netip.ParseAddr(ip)
		if err != nil || a.Zone() != "" {
			b.errs.add(serviceRef(s), "clusterIP %q is not an IP address; ignored", ip)
			continue
		}
		addrs = append(addrs, a)
	}
	return addrs[start:len(addrs):len(addrs)], addrs
}
