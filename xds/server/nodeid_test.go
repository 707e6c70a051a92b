package server

import (
	"net/netip"
	"testing"

	"github.com/capstanmesh/capstan/xds/ir"
	"github.com/google/go-cmp/cmp"
)

func TestParseNodeID(t *testing.T) {
	tests := []struct {
		id      string
		want    NodeID
		wantErr bool
	}{
		{
			id:   "sidecar~10.0.0.7~web-0.shop~shop.svc.cluster.local",
			want: NodeID{Type: NodeSidecar, IP: netip.MustParseAddr("10.0.0.7"), Pod: "web-0", Namespace: "shop", Domain: "svc.cluster.local"},
		},
		{
			id:   "grpc~10.0.0.3~client-7f9c.payments~payments.svc.cluster.local",
			want: NodeID{Type: NodeGRPC, IP: netip.MustParseAddr("10.0.0.3"), Pod: "client-7f9c", Namespace: "payments", Domain: "svc.cluster.local"},
		},
		{
			id:   "sidecar~fd00:10::7~web-0.shop~shop.svc.example.org",
			want: NodeID{Type: NodeSidecar, IP: netip.MustParseAddr("fd00:10::7"), Pod: "web-0", Namespace: "shop", Domain: "svc.example.org"},
		},
		{
			// Pod names are DNS subdomains and may contain dots.
			id:   "sidecar~10.0.0.7~web.v2.shop~shop.svc.cluster.local",
			want: NodeID{Type: NodeSidecar, IP: netip.MustParseAddr("10.0.0.7"), Pod: "web.v2", Namespace: "shop", Domain: "svc.cluster.local"},
		},
		{id: "", wantErr: true},
		{id: "sidecar~10.0.0.7~web-0.shop", wantErr: true},
		{id: "sidecar~10.0.0.7~web-0.shop~shop.svc.cluster.local~extra", wantErr: true},
		{id: "router~10.0.0.7~web-0.shop~shop.svc.cluster.local", wantErr: true},
		{id: "sidecar~10.0.0.300~web-0.shop~shop.svc.cluster.local", wantErr: true},
		{id: "sidecar~FD00::7~web-0.shop~shop.svc.cluster.local", wantErr: true},
		{id: "sidecar~fe80::1%eth0~web-0.shop~shop.svc.cluster.local", wantErr: true},
		{id: "sidecar~10.0.0.7~web-0.other~shop.svc.cluster.local", wantErr: true},
		{id: "sidecar~10.0.0.7~.shop~shop.svc.cluster.local", wantErr: true},
		{id: "sidecar~10.0.0.7~Web.shop~shop.svc.cluster.local", wantErr: true},
		{id: "sidecar~10.0.0.7~web-0.shop~shop", wantErr: true},
		{id: "sidecar~10.0.0.7~web-0.Shop~Shop.svc.cluster.local", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			got, err := ParseNodeID(tc.id)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseNodeID error = %v, want error: %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("ParseNodeID (-want +got):\n%s", diff)
			}
			if s := got.String(); s != tc.id {
				t.Errorf("String() = %q, want %q", s, tc.id)
			}
		})
	}
}

func TestParseNodeIDAcceptsTheModelsNodeIDs(t *testing.T) {
	id := ir.SidecarNodeID("10.0.0.7", "web-0", "shop")
	n, err := ParseNodeID(id)
	if err != nil {
		t.Fatalf("ParseNodeID(%q): %v", id, err)
	}
	if n.Type != NodeSidecar || n.Pod != "web-0" || n.Namespace != "shop" {
		t.Errorf("ParseNodeID(%q) = %+v", id, n)
	}
}

func FuzzParseNodeID(f *testing.F) {
	f.Add("sidecar~10.0.0.7~web-0.shop~shop.svc.cluster.local")
	f.Add("grpc~fd00::1~a.b.c~c.svc")
	f.Add("sidecar~~.~.")
	f.Fuzz(func(t *testing.T, id string) {
		n, err := ParseNodeID(id)
		if err != nil {
			return
		}
		if s := n.String(); s != id {
			t.Errorf("ParseNodeID(%q).String() = %q", id, s)
		}
	})
}
