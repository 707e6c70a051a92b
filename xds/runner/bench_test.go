package runner

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/go-logr/logr"

	"github.com/capstanmesh/capstan/xds/ir"
	"github.com/capstanmesh/capstan/xds/server"
)

const benchTrustDomain = "cluster.local"

// benchMesh is services × endpoints (one HTTP port each, with identities, so
// every cluster originates mTLS) in 10 namespaces, and proxies sidecars spread
// over those namespaces, each with one inbound port.
func benchMesh(services, endpoints, proxies int) *ir.Mesh {
	m := &ir.Mesh{TrustDomain: benchTrustDomain, MTLSMode: ir.MTLSPermissive}
	for i := range services {
		m.Services = append(m.Services, benchService(i, endpoints))
	}
	for i := range proxies {
		m.Proxies = append(m.Proxies, benchProxy(i))
	}
	return m
}

func benchService(i, endpoints int) *ir.Service {
	name, ns := fmt.Sprintf("svc-%04d", i), fmt.Sprintf("ns-%02d", i%10)
	id := ir.SpiffeID(benchTrustDomain, ns, name)
	s := &ir.Service{
		Name: name, Namespace: ns, FQDN: name + "." + ns + ".svc.cluster.local",
		ClusterIPs: []string{fmt.Sprintf("10.96.%d.%d", i/250, i%250+1)},
		Ports:      []*ir.ServicePort{{Name: "http", Port: 80, Protocol: ir.ProtocolHTTP, TargetPort: 8080}},
		Identities: []string{id},
	}
	for e := range endpoints {
		s.Endpoints = append(s.Endpoints, benchEndpoint(s, e, i, id))
	}
	return s
}

func benchEndpoint(s *ir.Service, e, base int, id string) *ir.Endpoint {
	return &ir.Endpoint{
		Address: fmt.Sprintf("10.%d.%d.%d", base%250, e/250, e%250+1),
		Ports:   map[string]uint32{"http": 8080},
		Pod:     fmt.Sprintf("%s/%s-%d", s.Namespace, s.Name, e),
		Labels:  map[string]string{"app": s.Name},
		// The first services share an address range with later ones; the
		// generator does not care, and neither does the benchmark.
		Identity: id,
	}
}

func benchProxy(i int) *ir.Proxy {
	ns, pod, ip := fmt.Sprintf("ns-%02d", i%10), fmt.Sprintf("app-%d", i), fmt.Sprintf("10.250.%d.%d", i/250, i%250+1)
	return &ir.Proxy{
		ID: ir.SidecarNodeID(ip, pod, ns), Kind: ir.ProxySidecar, Name: pod, Namespace: ns, IP: ip,
		ServiceAccount: "app", Identity: ir.SpiffeID(benchTrustDomain, ns, "app"),
		Inbound: []*ir.InboundPort{{Port: 8080, Protocol: ir.ProtocolHTTP, MTLS: ir.MTLSPermissive}},
	}
}

// withEndpointMoved returns a copy of the mesh in which one endpoint of
// service i has another address: one endpoint change.
func withEndpointMoved(m *ir.Mesh, i, round int) *ir.Mesh {
	next := *m
	next.Services = append([]*ir.Service(nil), m.Services...)
	s := *m.Services[i]
	s.Endpoints = append([]*ir.Endpoint(nil), s.Endpoints...)
	ep := *s.Endpoints[0]
	ep.Address = fmt.Sprintf("10.251.%d.%d", round/250%250, round%250+1)
	s.Endpoints[0] = &ep
	next.Services[i] = &s
	return &next
}

// BenchmarkEndpointChangePush is one push after one endpoint of one service
// moved, for 200 services × 10 endpoints and 200 connected sidecars: the
// runner's generation plus the server's validation, versioning and snapshots.
func BenchmarkEndpointChangePush(b *testing.B) {
	mesh := benchMesh(200, 10, 200)
	srv := server.New(server.Options{})
	table := newProxyTable()
	if errs := table.update(mesh, srv, logr.Discard()); len(errs) > 0 {
		b.Fatal(errs)
	}
	b.ReportAllocs()
	round := 0
	for b.Loop() {
		round++
		mesh = withEndpointMoved(mesh, round%len(mesh.Services), round)
		_ = table.update(mesh, srv, logr.Discard())
	}
}

// BenchmarkInitialPush is the first push of 200 services × 10 endpoints to
// 200 sidecars; it reports the heap after GC that the server and runner hold.
func BenchmarkInitialPush(b *testing.B) {
	mesh := benchMesh(200, 10, 200)
	b.ReportAllocs()
	for b.Loop() {
		_ = newProxyTable().update(mesh, server.New(server.Options{}), logr.Discard())
	}
	b.StopTimer()
	base := heapAfterGC()
	srv, table := server.New(server.Options{}), newProxyTable()
	_ = table.update(mesh, srv, logr.Discard())
	held := heapAfterGC() - base
	runtime.KeepAlive(srv)
	runtime.KeepAlive(table)
	b.ReportMetric(float64(held)/float64(len(mesh.Proxies)), "heap-bytes/proxy")
}

func heapAfterGC() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
