package generate

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/capstanmesh/capstan/xds/ir"
)

// Partial returns, for each selection, exactly ForProxy's messages of the
// selected names, on every golden case of a sidecar that ForProxy generates
// without per-object errors.
func TestPartialEqualsForProxy(t *testing.T) {
	checked := 0
	for _, dir := range caseDirs(t) {
		c := readCase(t, dir)
		proxy := c.Mesh.ProxyByID(c.Proxy)
		if proxy == nil || (proxy.Kind != "" && proxy.Kind != ir.ProxySidecar) {
			continue
		}
		full, err := ForProxy(&c.Mesh, proxy)
		if err != nil {
			continue
		}
		for name, sel := range partialSelections(&c.Mesh) {
			part, err := Partial(&c.Mesh, proxy, sel)
			var perObject Errors
			if err != nil && !errors.As(err, &perObject) {
				t.Fatalf("%s %s: %v", dir, name, err)
			}
			checkPart(t, dir+" "+name, full, part, &sel)
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no golden case checked")
	}
}

// partialSelections are one selection of each kind for a mesh's first service.
func partialSelections(m *ir.Mesh) map[string]Selection {
	if len(m.Services) == 0 || m.Services[0] == nil {
		return nil
	}
	s := m.Services[0]
	ports := map[uint32]bool{}
	for _, p := range s.Ports {
		if p != nil {
			ports[p.Port] = true
		}
	}
	one := map[string]bool{s.FQDN: true}
	return map[string]Selection{
		"endpoints": {Endpoints: one},
		"routes":    {RoutePorts: ports},
		"service":   {Services: one, AllRoutes: true, Listeners: true},
	}
}

// checkPart checks that part holds the messages of full that sel selects, equal.
func checkPart(t *testing.T, name string, full, part *Resources, sel *Selection) {
	t.Helper()
	want := &Resources{Listeners: full.Listeners}
	if !sel.Listeners {
		want.Listeners = nil
	}
	for _, c := range full.Clusters {
		if sel.Services[clusterService(c.GetName())] {
			want.Clusters = append(want.Clusters, c)
		}
	}
	for _, e := range full.Endpoints {
		if fqdn := clusterService(e.GetClusterName()); sel.Services[fqdn] || sel.Endpoints[fqdn] {
			want.Endpoints = append(want.Endpoints, e)
		}
	}
	for _, r := range full.Routes {
		if sel.AllRoutes || sel.RoutePorts[routePort(r.GetName())] {
			want.Routes = append(want.Routes, r)
		}
	}
	for typeURL, list := range want.ByType() {
		got := part.ByType()[typeURL]
		if len(got) != len(list) {
			t.Errorf("%s %s: %d resources, want %d", name, typeURL, len(got), len(list))
			continue
		}
		for i := range list {
			if !sameMessage(got[i], list[i]) {
				t.Errorf("%s %s #%d differs from ForProxy's", name, typeURL, i)
			}
		}
	}
}

// clusterService is the FQDN of an outbound cluster name, "" for others.
func clusterService(name string) string {
	parts := strings.SplitN(name, "|", 4)
	if len(parts) != 4 || parts[0] != "outbound" {
		return ""
	}
	return parts[3]
}

// routePort is the port of an outbound route configuration name (RouteConfigName).
func routePort(name string) uint32 {
	p, err := strconv.ParseUint(name, 10, 32)
	if err != nil {
		return 0
	}
	return uint32(p)
}

// sameMessage is proto.Equal, or equal JSON: messages with a Struct packed
// in an Any (JSON access logs) marshal its map in any order, which
// proto.Equal sees as different bytes.
func sameMessage(a, b proto.Message) bool {
	if proto.Equal(a, b) {
		return true
	}
	ja, errA := protojson.Marshal(a)
	jb, errB := protojson.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}
