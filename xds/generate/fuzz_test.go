package generate

import (
	"errors"
	"fmt"
	"testing"

	"github.com/capstanmesh/capstan/xds/ir"
)

// FuzzForProxy builds a random but well-formed mesh from the input bytes and
// checks that ForProxy does not panic, never fails as a whole, and that its
// output passes ValidateAll and the reference checks. The model may still
// hold user mistakes (unknown destinations, bad regexes, out-of-range
// values…); those must come back as per-object Errors.
func FuzzForProxy(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{3, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add([]byte("canary split with subsets and retries"))
	f.Add([]byte{5, 0, 0, 1, 2, 0, 3, 3, 3, 1, 0, 2, 2, 2, 7, 7, 7, 7, 255, 254, 253, 128, 64, 32, 16, 8, 4, 2, 1})
	f.Add([]byte{1, 4, 1, 1, 1, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4})
	f.Fuzz(func(t *testing.T, data []byte) {
		mesh := (&meshFuzzer{in: data}).mesh()
		res, err := ForProxy(mesh, mesh.Proxies[0])
		var errs Errors
		if err != nil && !errors.As(err, &errs) {
			t.Fatalf("ForProxy failed as a whole: %v", err)
		}
		if err := res.Validate(); err != nil {
			t.Fatalf("invalid output: %v", err)
		}
	})
}

// meshFuzzer is a small deterministic builder driven by the fuzz bytes; when
// the bytes run out every choice is 0.
type meshFuzzer struct {
	in    []byte
	fqdns []string
}

func (z *meshFuzzer) byte() byte {
	if len(z.in) == 0 {
		return 0
	}
	b := z.in[0]
	z.in = z.in[1:]
	return b
}

func (z *meshFuzzer) intn(n int) int    { return int(z.byte()) % n }
func (z *meshFuzzer) chance(n int) bool { return z.intn(n) == 0 }

func pick[T any](z *meshFuzzer, options ...T) T { return options[z.intn(len(options))] }

func (z *meshFuzzer) mesh() *ir.Mesh {
	type ref struct{ name, ns string }
	refs := make([]ref, 1+z.intn(6))
	for i := range refs {
		refs[i] = ref{pick(z, "a", "b", "c"), pick(z, "default", "prod")}
		z.fqdns = append(z.fqdns, refs[i].name+"."+refs[i].ns+".svc.cluster.local")
	}
	m := &ir.Mesh{TrustDomain: testTrustDomain, MTLSMode: pick(z, ir.MTLSPermissive, ir.MTLSStrict, ir.MTLSDisable)}
	for _, r := range refs {
		m.Services = append(m.Services, z.service(r.name, r.ns))
	}
	m.Proxies = []*ir.Proxy{z.proxy()}
	return m
}

func (z *meshFuzzer) service(name, ns string) *ir.Service {
	s := &ir.Service{Name: name, Namespace: ns, FQDN: name + "." + ns + ".svc.cluster.local", Headless: z.chance(5)}
	if !s.Headless {
		s.ClusterIPs = []string{pick(z, "10.96.0.1", "10.96.0.2", "fd00::1", "10.96.0.3", "bad-ip")}
	}
	for range 1 + z.intn(3) {
		p := pick(z, uint32(80), 8080, 9080, 5432, 15021, 0, 70000)
		s.Ports = append(s.Ports, &ir.ServicePort{Name: fmt.Sprintf("p%d", p), Port: p, TargetPort: pick(z, uint32(0), 8080),
			Protocol: pick(z, ir.ProtocolHTTP, ir.ProtocolHTTP2, ir.ProtocolGRPC, ir.ProtocolTCP)})
	}
	for i := range z.intn(5) {
		s.Endpoints = append(s.Endpoints, z.endpoint(s, i))
	}
	if z.chance(2) {
		s.Identities = []string{ir.SpiffeID(testTrustDomain, ns, name)}
	}
	s.Policy = z.policy()
	for _, sub := range []string{"v1", "v2"}[:z.intn(3)] {
		s.Subsets = append(s.Subsets, &ir.Subset{Name: sub, Labels: map[string]string{"version": sub}, Policy: z.policy()})
	}
	for i := range z.intn(4) {
		s.Routes = append(s.Routes, z.route(s, i))
	}
	return s
}

func (z *meshFuzzer) endpoint(s *ir.Service, i int) *ir.Endpoint {
	ports := map[string]uint32{}
	for _, p := range s.Ports {
		ports[p.Name] = pick(z, uint32(8080), 9090, 0)
	}
	return &ir.Endpoint{
		Address:  pick(z, fmt.Sprintf("10.0.0.%d", i+1), "fd00::5", "10.0.0.1", "not-an-ip"),
		Ports:    ports,
		Zone:     pick(z, "", "zone-a", "zone-b"),
		Labels:   map[string]string{"version": pick(z, "v1", "v2")},
		Identity: s.FQDN,
	}
}

func (z *meshFuzzer) policy() *ir.TrafficPolicy {
	if z.chance(2) {
		return nil
	}
	p := &ir.TrafficPolicy{LoadBalancer: &ir.LoadBalancer{
		Algorithm:    pick(z, ir.LBRoundRobin, ir.LBLeastRequest, ir.LBRandom, ir.LBRingHash, "Weird"),
		HashHeader:   pick(z, "", "x-user"),
		HashSourceIP: z.chance(2),
	}}
	if z.chance(2) {
		p.LoadBalancer.HashCookie = &ir.HashCookie{Name: "s", TTL: ir.DurationPtr(0)}
	}
	if z.chance(2) {
		p.ConnectionPool = &ir.ConnectionPool{MaxConnections: uint32(z.byte()), MaxRequestsPerConnection: uint32(z.byte()),
			IdleTimeout: pick(z, nil, ir.DurationPtr(1e9)), ConnectTimeout: pick(z, nil, ir.DurationPtr(0), ir.DurationPtr(-1))}
	}
	if z.chance(2) {
		five := uint32(5)
		p.OutlierDetection = &ir.OutlierDetection{Consecutive5xxErrors: pick(z, nil, &five), Interval: ir.Duration(z.intn(3)) * 1e9,
			MaxEjectionPercent: uint32(z.byte()), MinHealthPercent: uint32(z.byte())}
	}
	return p
}

func (z *meshFuzzer) route(s *ir.Service, i int) *ir.HTTPRoute {
	r := &ir.HTTPRoute{
		Name:   fmt.Sprintf("%s/%s/r%d", s.Namespace, s.Name, i),
		Source: ir.ObjectRef{Kind: "MeshRoute", Namespace: s.Namespace, Name: s.Name},
	}
	for range z.intn(3) {
		r.Matches = append(r.Matches, z.match())
	}
	if z.chance(6) {
		r.Redirect = &ir.Redirect{Path: "/x", Code: pick(z, uint32(0), 301, 308, 200)}
		return r
	}
	for range 1 + z.intn(3) {
		r.Destinations = append(r.Destinations, z.destination())
	}
	z.decorate(r)
	return r
}

func (z *meshFuzzer) destination() *ir.Destination {
	return &ir.Destination{
		Service: pick(z, z.fqdns[0], z.fqdns[len(z.fqdns)-1], "nowhere.default.svc.cluster.local"),
		Port:    pick(z, uint32(0), 80, 8080, 9080),
		Subset:  pick(z, "", "v1", "v2", "v3"),
		Weight:  pick(z, uint32(50), 100, 0, 34, 33),
	}
}

func (z *meshFuzzer) match() *ir.Match {
	kind := func() ir.MatchKind {
		return pick(z, ir.MatchExact, ir.MatchPrefix, ir.MatchRegex, ir.MatchPresent, "Odd")
	}
	value := func() string { return pick(z, "/", "/api", "^/v[0-9]+$", "([", "", "a\nb") }
	m := &ir.Match{Method: pick(z, "", "GET")}
	if z.chance(2) {
		m.Path = &ir.StringMatch{Kind: kind(), Value: value()}
	}
	for range z.intn(3) {
		m.Headers = append(m.Headers, &ir.KeyedMatch{Name: pick(z, "x-a", "", ":authority"), Kind: kind(), Value: value(), Invert: z.chance(3)})
	}
	for range z.intn(2) {
		m.QueryParams = append(m.QueryParams, &ir.KeyedMatch{Name: pick(z, "q", ""), Kind: kind(), Value: value(), Invert: z.chance(4)})
	}
	return m
}

// decorate adds the optional parts of a forwarding rule.
func (z *meshFuzzer) decorate(r *ir.HTTPRoute) {
	if z.chance(2) {
		r.Timeout = pick(z, ir.DurationPtr(1e9), ir.DurationPtr(-1))
	}
	if z.chance(2) {
		r.Retries = &ir.Retries{Attempts: uint32(z.intn(4)), RetryOn: []string{"5xx"}, PerTryTimeout: pick(z, nil, ir.DurationPtr(0)),
			Budget: pick(z, nil, &ir.RetryBudget{Percent: uint32(z.byte()), MinRetryConcurrency: 1})}
	}
	if z.chance(3) {
		r.Fault = &ir.Fault{Delay: &ir.FaultDelay{Delay: ir.Duration(z.intn(3)) * 1e9, Percent: uint32(z.byte())},
			Abort: pick(z, nil, &ir.FaultAbort{HTTPStatus: pick(z, uint32(503), 700, 0), Percent: 10})}
	}
	if z.chance(3) {
		r.Mirror = &ir.Mirror{Destination: *z.destination(), Percent: uint32(z.byte())}
	}
	if z.chance(3) {
		r.Rewrite = &ir.Rewrite{Prefix: pick(z, "", "/p"), FullPath: pick(z, "", "/f"), Authority: pick(z, "", "h")}
	}
	if z.chance(3) {
		r.RequestHeaders = &ir.HeaderOps{Set: []*ir.Header{{Name: pick(z, "x-s", "", "bad\nname", "host", ":path"), Value: "v"}}, Remove: []string{pick(z, "x-r", "")}}
		r.ResponseHeaders = &ir.HeaderOps{Add: []*ir.Header{{Name: "x-a", Value: pick(z, "v", "bad\r\nvalue")}}}
	}
}

func (z *meshFuzzer) proxy() *ir.Proxy {
	p := newProxy()
	p.Namespace = pick(z, "default", "prod")
	p.Inbound = nil
	for range z.intn(4) {
		p.Inbound = append(p.Inbound, &ir.InboundPort{
			Port:     pick(z, uint32(8080), 9090, 0, 8080),
			Protocol: pick(z, ir.ProtocolHTTP, ir.ProtocolGRPC, ir.ProtocolTCP),
			MTLS:     pick(z, ir.MTLSStrict, ir.MTLSPermissive, ir.MTLSDisable),
		})
	}
	for range z.intn(3) {
		p.AppProbes = append(p.AppProbes, &ir.AppProbe{
			Path:       pick(z, "/app-health/c/readyz", "/app-health/c/livez", "/other", "", "/app-health/c/bad\n"),
			Port:       pick(z, uint32(8080), 15021, 0, 70000),
			TargetPath: pick(z, "/healthz", "", "relative", "/a\r\nb"),
			Headers:    []*ir.Header{{Name: pick(z, "x-p", "Host", ":authority", "bad name", ""), Value: pick(z, "v", "bad\r\nvalue")}},
		})
	}
	if z.chance(2) { // scoped: its namespace and maybe one more host
		p.Scope = &ir.Scope{Namespaces: []string{p.Namespace}}
		if z.chance(2) {
			p.Scope.Hosts = []string{pick(z, "a.default.svc.cluster.local", "b.prod.svc.cluster.local", "x.other.svc.cluster.local")}
		}
	}
	return p
}
