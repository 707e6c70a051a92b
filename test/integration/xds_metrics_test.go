package integration

import (
	"context"
	"fmt"
	"net"
	"testing"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/utils/ptr"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/internal/app"
	"github.com/capstanmesh/capstan/internal/meshmetrics"
	"github.com/capstanmesh/capstan/test/envtest"
	"github.com/capstanmesh/capstan/test/xdsclient"
	"github.com/capstanmesh/capstan/xds/server"
)

// xdsMetrics reads the xDS series of one pipeline: its observer records
// to a registry of its own (the manager's is shared by the package's
// parallel tests), through the same meshmetrics code as the manager's.
type xdsMetrics struct{ reg *prometheus.Registry }

// value returns the value of a series (a histogram's sample count), and
// whether it exists.
func (m xdsMetrics) value(t *testing.T, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatalf("gathering metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			if !hasLabels(s, labels) {
				continue
			}
			switch {
			case s.GetGauge() != nil:
				return s.GetGauge().GetValue(), true
			case s.GetCounter() != nil:
				return s.GetCounter().GetValue(), true
			case s.GetHistogram() != nil:
				return float64(s.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func hasLabels(s *dto.Metric, want map[string]string) bool {
	have := map[string]string{}
	for _, l := range s.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// waitValue polls a series until check accepts its value.
func (m xdsMetrics) waitValue(t *testing.T, name string, labels map[string]string, what string, check func(float64) bool) float64 {
	t.Helper()
	var v float64
	err := envtest.Poll(context.Background(), xdsWait, func() error {
		var ok bool
		if v, ok = m.value(t, name, labels); !ok || !check(v) {
			return fmt.Errorf("%s%v = %v (exists: %v), want %s", name, labels, v, ok, what)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestXDSMetrics runs the pipeline in a manager with a real ADS client and
// checks each xDS series the server records: one sidecar connected, pushes
// by type, a convergence observed once a change is ACKed, a NACK counted
// when the client rejects a change, a connection refused by the per-peer
// cap, no proxy connected after the client left.
func TestXDSMetrics(t *testing.T) {
	m := xdsMetrics{reg: prometheus.NewRegistry()}
	obs, err := meshmetrics.NewXDS(m.reg)
	if err != nil {
		t.Fatal(err)
	}
	p := startPipelineWith(t, func(o *app.PipelineOptions) {
		o.XDSObserver = obs
		o.Limits.MaxConnectionsPerPeer = 1
	})
	node := p.seedReviews(t)
	fqdn := "reviews." + p.ns + ".svc.cluster.local"
	v1, v2, all := p.cluster("v1"), p.cluster("v2"), p.cluster("")
	sidecar, grpc := map[string]string{"kind": "Sidecar"}, map[string]string{"kind": "GRPC"}
	ofType := func(typ string) map[string]string { return map[string]string{"type": typ} }

	c := xdsclient.DialSotW(t, p.addr, node)
	c.Watch(t, resourcev3.ClusterType)
	c.Watch(t, resourcev3.RouteType, "9080")
	c.WaitFor(t, xdsWait, hasResources(resourcev3.ClusterType, v1, v2, all))
	c.WaitFor(t, xdsWait, wantWeights(fqdn, map[string]uint32{all: 100}))

	m.waitValue(t, meshmetrics.ConnectedProxies, sidecar, "1", func(v float64) bool { return v == 1 })
	if v, _ := m.value(t, meshmetrics.ConnectedProxies, grpc); v != 0 {
		t.Errorf("%s{kind=GRPC} = %v, want 0", meshmetrics.ConnectedProxies, v)
	}
	for _, typ := range []string{"Cluster", "RouteConfiguration"} {
		m.waitValue(t, meshmetrics.Pushes, ofType(typ), "at least 1", func(v float64) bool { return v >= 1 })
	}
	if v, _ := m.value(t, meshmetrics.Pushes, ofType("Listener")); v != 0 {
		t.Errorf("%s{type=Listener} = %v, want 0: the client does not watch listeners", meshmetrics.Pushes, v)
	}

	// A change the client ACKs converges.
	before, _ := m.value(t, meshmetrics.Convergence, nil)
	routePushes, _ := m.value(t, meshmetrics.Pushes, ofType("RouteConfiguration"))
	route := canaryRoute(p.ns, "reviews")
	p.create(t, route)
	c.WaitFor(t, xdsWait, wantWeights(fqdn, map[string]uint32{v1: 90, v2: 10}))
	converged := m.waitValue(t, meshmetrics.Convergence, nil, "one more observation", func(v float64) bool { return v > before })
	m.waitValue(t, meshmetrics.Pushes, ofType("RouteConfiguration"), "one more", func(v float64) bool { return v > routePushes })
	if sum := convergenceSum(t, m); sum <= 0 || sum > xdsWait.Seconds() {
		t.Errorf("%s_sum = %vs, want within (0, %v]", meshmetrics.Convergence, sum, xdsWait)
	}

	// A NACK is counted. The server does not send the rejected config
	// again (it would be rejected again, in a loop); the next change, which
	// this client ACKs, converges.
	c.NackNext(resourcev3.RouteType, "test: route rejected")
	setWeights(t, p.ns, 50, 50)
	m.waitValue(t, meshmetrics.NACKs, ofType("RouteConfiguration"), "1", func(v float64) bool { return v == 1 })
	setWeights(t, p.ns, 60, 40)
	c.WaitFor(t, xdsWait, wantWeights(fqdn, map[string]uint32{v1: 60, v2: 40}))
	m.waitValue(t, meshmetrics.Convergence, nil, "one more observation once the next config is ACKed", func(v float64) bool { return v > converged })
	if v, _ := m.value(t, meshmetrics.NACKs, ofType("Cluster")); v != 0 {
		t.Errorf("%s{type=Cluster} = %v, want 0", meshmetrics.NACKs, v)
	}

	// A second connection from the same peer is refused by the cap.
	refused := map[string]string{"reason": server.ReasonMaxConnectionsPerPeer}
	if v, _ := m.value(t, meshmetrics.ConnectionsRefused, refused); v != 0 {
		t.Errorf("%s = %v before a second connection, want 0", meshmetrics.ConnectionsRefused, v)
	}
	extra, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = extra.Close() }()
	m.waitValue(t, meshmetrics.ConnectionsRefused, refused, "1", func(v float64) bool { return v == 1 })

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	m.waitValue(t, meshmetrics.ConnectedProxies, sidecar, "0 once the client left", func(v float64) bool { return v == 0 })
}

func convergenceSum(t *testing.T, m xdsMetrics) float64 {
	t.Helper()
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == meshmetrics.Convergence {
			return f.GetMetric()[0].GetHistogram().GetSampleSum()
		}
	}
	t.Fatalf("%s not gathered", meshmetrics.Convergence)
	return 0
}

// setWeights changes the canary route's v1/v2 split.
func setWeights(t *testing.T, ns string, v1, v2 int32) {
	t.Helper()
	err := envtest.Poll(context.Background(), xdsWait, func() error {
		mr, err := getRoute(ns, "reviews")
		if err != nil {
			return err
		}
		mr.Spec.HTTP[0].Route = []meshv1alpha1.Destination{
			{Host: "reviews", Subset: "v1", Weight: ptr.To(v1)},
			{Host: "reviews", Subset: "v2", Weight: ptr.To(v2)},
		}
		return env.Client.Update(context.Background(), mr)
	})
	if err != nil {
		t.Fatalf("updating the route: %v", err)
	}
}
