package sidecars

import (
	"slices"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// A simulated sidecar subscribes like Envoy: to the EDS names of the
// clusters, the route names of the listeners and the secrets both
// reference; it drops what is no longer referenced, and holds a complete
// config only once it has every referenced name.
func TestProxySubscribesToWhatItsConfigReferences(t *testing.T) {
	p := newProxy("sidecar~10.0.0.1~a.ns~ns.svc.cluster.local", NewFleet())
	clusters := []*info{
		{name: "outbound|80||a", eds: "outbound|80||a", secrets: []string{"default", "ROOTCA"}},
		{name: "outbound|80||b", eds: "outbound|80||b"},
		{name: "passthrough"},
	}
	ch := p.apply(resource.ClusterType, clusters, nil, false)
	if got := ch[resource.EndpointType].add; !slices.Equal(got, []string{"outbound|80||a", "outbound|80||b"}) {
		t.Errorf("EDS subscription after CDS = %v", got)
	}
	if got := ch[resource.SecretType].add; !slices.Equal(got, []string{"ROOTCA", "default"}) {
		t.Errorf("SDS subscription after CDS = %v", got)
	}
	ch = p.apply(resource.ListenerType, []*info{{name: "0.0.0.0_80", routes: []string{"80"}}}, nil, false)
	if got := ch[resource.RouteType].add; !slices.Equal(got, []string{"80"}) {
		t.Errorf("RDS subscription after LDS = %v", got)
	}
	p.apply(resource.EndpointType, []*info{{name: "outbound|80||a"}, {name: "outbound|80||b"}}, nil, false)
	p.apply(resource.SecretType, []*info{{name: "default"}, {name: "ROOTCA"}}, nil, false)
	if p.complete() {
		t.Fatal("complete without the route configuration")
	}
	p.apply(resource.RouteType, []*info{{name: "80"}}, nil, false)
	if !p.complete() {
		t.Fatalf("not complete with every referenced name: %s", p.missing())
	}

	ch = p.apply(resource.ClusterType, nil, []string{"outbound|80||b"}, false)
	if got := ch[resource.EndpointType]; len(got.add) != 0 || !slices.Equal(got.remove, []string{"outbound|80||b"}) {
		t.Errorf("EDS change after removing a cluster = %+v, want only outbound|80||b unsubscribed", got)
	}
	if p.have[resource.EndpointType]["outbound|80||b"] != nil {
		t.Error("the unsubscribed assignment is still held")
	}
}

// An expectation is met by a response carrying an assignment with the new
// address, or a route with the new split, and by nothing else.
func TestExpectationMetOnlyByTheChange(t *testing.T) {
	e := &expectation{spec: Expectation{NewIP: "10.250.0.1"}}
	if e.metBy(resource.EndpointType, []*info{{ips: []string{"10.1.0.1", "10.250.0.10"}}}) {
		t.Error("met by an assignment without the new address")
	}
	if !e.metBy(resource.EndpointType, []*info{{ips: []string{"10.1.0.1", "10.250.0.1"}}}) {
		t.Error("not met by an assignment with the new address")
	}
	e = &expectation{spec: Expectation{Split: "73,27"}}
	if e.metBy(resource.RouteType, []*info{{splits: []string{"90,10"}}}) || !e.metBy(resource.RouteType, []*info{{splits: []string{"73,27", "90,10"}}}) {
		t.Error("a split expectation is not met by exactly the routes with the split")
	}
}
