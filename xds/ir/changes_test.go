package ir

import (
	"fmt"
	"reflect"
	"testing"
)

func diffService(fqdn string) *Service {
	return &Service{
		Name: "a", Namespace: "ns", FQDN: fqdn, ClusterIPs: []string{"10.96.0.1"},
		Ports:     []*ServicePort{{Name: "http", Port: 80, Protocol: ProtocolHTTP}},
		Endpoints: []*Endpoint{{Address: "10.0.0.1", Ports: map[string]uint32{"http": 8080}}},
		Routes: []*HTTPRoute{{Name: "r", Destinations: []*Destination{
			{Service: fqdn, Port: 80, Subset: "v1", Weight: 90}, {Service: fqdn, Port: 80, Subset: "v2", Weight: 10},
		}}},
	}
}

// Diff classifies each change by what incremental generation has to redo.
func TestDiff(t *testing.T) {
	const a, b = "a.ns.svc.cluster.local", "b.ns.svc.cluster.local"
	prev := &Mesh{TrustDomain: "cluster.local", Services: []*Service{diffService(a)}}
	for _, tc := range []struct {
		name   string
		change func(m *Mesh)
		want   Changes
	}{
		{"nothing", func(*Mesh) {}, Changes{}},
		{"endpoint", func(m *Mesh) { m.Services[0].Endpoints[0].Address = "10.0.0.2" }, Changes{Endpoints: []string{a}}},
		{"headless endpoint", func(m *Mesh) {
			m.Services[0].Headless = true
			prev.Services[0].Headless = true
			m.Services[0].Endpoints[0].Address = "10.0.0.2"
		}, Changes{Changed: []string{a}}},
		{"weights", func(m *Mesh) { m.Services[0].Routes[0].Destinations[0].Weight = 73 }, Changes{Routes: []string{a}}},
		{"weights and endpoint", func(m *Mesh) {
			m.Services[0].Routes[0].Destinations[0].Weight = 73
			m.Services[0].Endpoints[0].Address = "10.0.0.2"
		}, Changes{Endpoints: []string{a}, Routes: []string{a}}},
		{"route to another service", func(m *Mesh) { m.Services[0].Routes[0].Destinations[0].Service = b }, Changes{Changed: []string{a}}},
		{"retry budget", func(m *Mesh) {
			m.Services[0].Routes[0].Retries = &Retries{Attempts: 2, Budget: &RetryBudget{Percent: 20}}
		}, Changes{Changed: []string{a}}},
		{"port", func(m *Mesh) { m.Services[0].Ports[0].Port = 81 }, Changes{Changed: []string{a}}},
		{"added", func(m *Mesh) { m.Services = append(m.Services, diffService(b)) }, Changes{Added: []string{b}}},
		{"added with a retry budget", func(m *Mesh) {
			s := diffService(b)
			s.Routes[0].Retries = &Retries{Budget: &RetryBudget{Percent: 20}}
			m.Services = append(m.Services, s)
		}, Changes{Changed: []string{b}}},
		{"removed", func(m *Mesh) { m.Services = nil }, Changes{Removed: []string{a}}},
		{"mesh-wide", func(m *Mesh) { m.MTLSMode = MTLSStrict }, Changes{Full: true}},
		{"repeated FQDN", func(m *Mesh) { m.Services = append(m.Services, diffService(a)) }, Changes{Full: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prev.Services = []*Service{diffService(a)}
			next := &Mesh{TrustDomain: "cluster.local", Services: []*Service{diffService(a)}}
			tc.change(next)
			if got := Diff(prev, next); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Diff = %+v, want %+v", got, tc.want)
			}
		})
	}
	if got := Diff(nil, prev); !got.Full {
		t.Errorf("Diff from nil = %+v, want Full", got)
	}
	if got := Diff(prev, prev); !got.Empty() {
		t.Errorf("Diff of a mesh with itself = %+v, want empty", got)
	}
}

// A diff of many services is classified in chunks, one per core: every
// change is found whichever chunk holds it, and the lists come out sorted.
func TestDiffManyServices(t *testing.T) {
	const n = 1000
	mesh := func() *Mesh {
		m := &Mesh{TrustDomain: "cluster.local"}
		for i := range n {
			m.Services = append(m.Services, diffService(fmt.Sprintf("s%04d.ns.svc.cluster.local", i)))
		}
		return m
	}
	prev, next := mesh(), mesh()
	for _, i := range []int{999, 0, 500} {
		next.Services[i].Endpoints[0].Address = "10.0.0.2"
	}
	for _, i := range []int{700, 1} {
		next.Services[i].Routes[0].Destinations[0].Weight = 73
	}
	next.Services[250].Ports[0].Port = 81
	next.Services = append(next.Services[:300], next.Services[301:]...)
	want := Changes{
		Endpoints: []string{"s0000.ns.svc.cluster.local", "s0500.ns.svc.cluster.local", "s0999.ns.svc.cluster.local"},
		Routes:    []string{"s0001.ns.svc.cluster.local", "s0700.ns.svc.cluster.local"},
		Removed:   []string{"s0300.ns.svc.cluster.local"},
		Changed:   []string{"s0250.ns.svc.cluster.local"},
	}
	if got := Diff(prev, next); !reflect.DeepEqual(got, want) {
		t.Errorf("Diff = %+v, want %+v", got, want)
	}
}
