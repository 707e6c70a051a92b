package translate

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/xds/ir"
)

// pa builds a PeerAuthentication created age minutes after a fixed time.
func pa(ns, name string, age int, mode meshv1alpha1.PeerMTLSMode, selector map[string]string, ports map[string]meshv1alpha1.PeerMTLSMode) meshv1alpha1.PeerAuthentication {
	p := meshv1alpha1.PeerAuthentication{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:         ns,
			Name:              name,
			CreationTimestamp: metav1.NewTime(time.Date(2025, 1, 1, 0, age, 0, 0, time.UTC)),
		},
		Spec: meshv1alpha1.PeerAuthenticationSpec{MTLS: meshv1alpha1.PeerMTLS{Mode: mode}},
	}
	if selector != nil {
		p.Spec.Selector = &meshv1alpha1.WorkloadSelector{MatchLabels: selector}
	}
	for port, m := range ports {
		if p.Spec.PortLevelMTLS == nil {
			p.Spec.PortLevelMTLS = map[string]meshv1alpha1.PeerMTLS{}
		}
		p.Spec.PortLevelMTLS[port] = meshv1alpha1.PeerMTLS{Mode: m}
	}
	return p
}

func TestPeerAuthPrecedence(t *testing.T) {
	const (
		strict     = meshv1alpha1.PeerMTLSStrict
		permissive = meshv1alpha1.PeerMTLSPermissive
		disable    = meshv1alpha1.PeerMTLSDisable
		unset      = meshv1alpha1.PeerMTLSUnset
	)
	app := map[string]string{"app": "web"}
	tests := []struct {
		name   string
		mesh   ir.MTLSMode
		pas    []meshv1alpha1.PeerAuthentication
		labels map[string]string
		port   uint32
		want   ir.MTLSMode
	}{
		{name: "mesh default", mesh: ir.MTLSPermissive, want: ir.MTLSPermissive},
		{name: "mesh strict", mesh: ir.MTLSStrict, want: ir.MTLSStrict},
		{name: "namespace beats mesh", mesh: ir.MTLSStrict,
			pas: []meshv1alpha1.PeerAuthentication{pa("ns", "a", 0, disable, nil, nil)}, want: ir.MTLSDisable},
		{name: "other namespace ignored", mesh: ir.MTLSStrict,
			pas: []meshv1alpha1.PeerAuthentication{pa("other", "a", 0, disable, nil, nil)}, want: ir.MTLSStrict},
		{name: "namespace UNSET inherits mesh", mesh: ir.MTLSStrict,
			pas: []meshv1alpha1.PeerAuthentication{pa("ns", "a", 0, unset, nil, nil)}, want: ir.MTLSStrict},
		{name: "oldest namespace-wide wins", mesh: ir.MTLSPermissive,
			pas: []meshv1alpha1.PeerAuthentication{pa("ns", "new", 5, disable, nil, nil), pa("ns", "old", 1, strict, nil, nil)}, want: ir.MTLSStrict},
		{name: "same age: namespace/name breaks the tie", mesh: ir.MTLSPermissive,
			pas: []meshv1alpha1.PeerAuthentication{pa("ns", "b", 1, disable, nil, nil), pa("ns", "a", 1, strict, nil, nil)}, want: ir.MTLSStrict},
		{name: "workload beats namespace", mesh: ir.MTLSPermissive, labels: app,
			pas: []meshv1alpha1.PeerAuthentication{pa("ns", "ns", 0, strict, nil, nil), pa("ns", "w", 9, permissive, app, nil)}, want: ir.MTLSPermissive},
		{name: "workload not matching", mesh: ir.MTLSPermissive, labels: map[string]string{"app": "db"},
			pas: []meshv1alpha1.PeerAuthentication{pa("ns", "ns", 0, strict, nil, nil), pa("ns", "w", 9, disable, app, nil)}, want: ir.MTLSStrict},
		{name: "workload UNSET inherits namespace", mesh: ir.MTLSPermissive, labels: app,
			pas: []meshv1alpha1.PeerAuthentication{pa("ns", "ns", 0, strict, nil, nil), pa("ns", "w", 9, unset, app, nil)}, want: ir.MTLSStrict},
		{name: "oldest matching workload wins", mesh: ir.MTLSPermissive, labels: app,
			pas: []meshv1alpha1.PeerAuthentication{pa("ns", "w2", 5, strict, app, nil), pa("ns", "w1", 2, disable, map[string]string{"app": "web"}, nil)}, want: ir.MTLSDisable},
		{name: "port override", mesh: ir.MTLSPermissive, labels: app, port: 8443,
			pas: []meshv1alpha1.PeerAuthentication{pa("ns", "w", 0, permissive, app, map[string]meshv1alpha1.PeerMTLSMode{"8443": strict})}, want: ir.MTLSStrict},
		{name: "port override on another port", mesh: ir.MTLSPermissive, labels: app, port: 8080,
			pas: []meshv1alpha1.PeerAuthentication{pa("ns", "w", 0, disable, app, map[string]meshv1alpha1.PeerMTLSMode{"8443": strict})}, want: ir.MTLSDisable},
		{name: "port UNSET inherits workload", mesh: ir.MTLSPermissive, labels: app, port: 8443,
			pas: []meshv1alpha1.PeerAuthentication{pa("ns", "w", 0, disable, app, map[string]meshv1alpha1.PeerMTLSMode{"8443": unset})}, want: ir.MTLSDisable},
		{name: "port and workload UNSET inherit namespace", mesh: ir.MTLSPermissive, labels: app, port: 8443,
			pas: []meshv1alpha1.PeerAuthentication{pa("ns", "ns", 0, strict, nil, nil), pa("ns", "w", 0, unset, app, map[string]meshv1alpha1.PeerMTLSMode{"8443": unset})}, want: ir.MTLSStrict},
		{name: "everything UNSET inherits mesh", mesh: ir.MTLSStrict, labels: app, port: 8443,
			pas: []meshv1alpha1.PeerAuthentication{pa("ns", "ns", 0, unset, nil, nil), pa("ns", "w", 0, unset, app, nil)}, want: ir.MTLSStrict},
	}
	var got, want []string
	for _, tt := range tests {
		tr := newTranslator(&Inputs{PeerAuthentications: tt.pas})
		tr.meshMode = tt.mesh
		tr.translatePeerAuthentications()
		got = append(got, tt.name+": "+string(tr.peerAuth.mode("ns", tt.labels, tt.port)))
		want = append(want, tt.name+": "+string(tt.want))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("effective mode (-want +got):\n%s", diff)
	}
}

// PeerAuthenticationsOf names the policies a sidecar's inbound config
// carries: the oldest workload policy selecting its pod and the namespace-wide one.
func TestPeerAuthenticationsOf(t *testing.T) {
	app := map[string]string{"app": "web"}
	tr := newTranslator(&Inputs{PeerAuthentications: []meshv1alpha1.PeerAuthentication{
		pa("ns", "ns-wide", 0, meshv1alpha1.PeerMTLSStrict, nil, nil),
		pa("ns", "web-old", 1, meshv1alpha1.PeerMTLSPermissive, app, nil),
		pa("ns", "web-new", 2, meshv1alpha1.PeerMTLSDisable, app, nil),
		pa("other", "other-wide", 0, meshv1alpha1.PeerMTLSStrict, nil, nil),
	}})
	tr.translatePeerAuthentications()
	res := &Result{peerAuth: tr.peerAuth}
	ref := func(name string) ir.ObjectRef {
		return ir.ObjectRef{Kind: KindPeerAuthentication, Namespace: "ns", Name: name}
	}
	tests := []struct {
		name  string
		proxy *ir.Proxy
		want  []ir.ObjectRef
	}{
		{"selected sidecar", &ir.Proxy{Kind: ir.ProxySidecar, Namespace: "ns", Labels: app}, []ir.ObjectRef{ref("web-old"), ref("ns-wide")}},
		{"other sidecar of the namespace", &ir.Proxy{Kind: ir.ProxySidecar, Namespace: "ns", Labels: map[string]string{"app": "db"}}, []ir.ObjectRef{ref("ns-wide")}},
		{"sidecar of a namespace without policy", &ir.Proxy{Kind: ir.ProxySidecar, Namespace: "bare", Labels: app}, nil},
		{"proxyless gRPC client", &ir.Proxy{Kind: ir.ProxyGRPC, Namespace: "ns", Labels: app}, nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, res.PeerAuthenticationsOf(tt.proxy)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}
