package generate

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

func TestSlab(t *testing.T) {
	s := newSlab[[4]int](3)
	if s.chunk != 3 {
		t.Fatalf("chunk = %d, want 3", s.chunk)
	}
	a, b := s.new(), s.new()
	if a == b || *a != [4]int{} {
		t.Fatal("new must return distinct zeroed values")
	}
	a[0] = 1
	list := s.slice(2) // does not fit in the chunk's last value: a new chunk
	if len(list) != 2 || cap(list) != 2 || list[0] != [4]int{} {
		t.Fatalf("slice(2) = len %d cap %d %v", len(list), cap(list), list)
	}
	_ = append(list, [4]int{9}) // cap is 2: the append must reallocate, not write past the slice
	if next := s.new(); *next != [4]int{} {
		t.Fatal("appending to a slice ran into the next value")
	}
	if big := s.slice(10); len(big) != 10 || cap(big) != 10 {
		t.Fatalf("slice larger than a chunk: len %d cap %d", len(big), cap(big))
	}
	if *a != [4]int{1} || *b != [4]int{} {
		t.Fatal("values changed after later allocations")
	}
}

// TestSlabChunks: chunks are of equal size, at most chunkBytes.
func TestSlabChunks(t *testing.T) {
	for _, n := range []int{0, 1, 100, 545, 546, 547, 10000} {
		s := newSlab[[120]byte](n)
		chunks := (max(n, 1) + s.chunk - 1) / s.chunk
		if s.chunk*120 > chunkBytes || chunks*s.chunk-max(n, 1) >= chunks {
			t.Errorf("n=%d: chunk %d (%d chunks) wastes too much or is too large", n, s.chunk, chunks)
		}
	}
}

func TestText(t *testing.T) {
	tx := newText(100)
	var got, want []string
	for i := range 200 {
		s := strings.Repeat(strconv.Itoa(i), i%7)
		want = append(want, s)
		got = append(got, tx.string([]byte(s)))
	}
	got = append(got, tx.string(make([]byte, 500))) // larger than a buffer
	want = append(want, string(make([]byte, 500)))
	if !slices.Equal(got, want) {
		t.Fatal("stored strings differ from what was written, or changed")
	}
}

func TestSortByName(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct{ sorted, after int }{{0, 0}, {1, 0}, {10, 3}, {1000, 4}, {1000, 16}, {1000, 17}, {50, 50}} {
		names := make([]string, tc.sorted+tc.after)
		for i := range names {
			names[i] = fmt.Sprintf("n%06d", r.IntN(1_000_000)) + strconv.Itoa(i) // unique
		}
		slices.Sort(names[:tc.sorted])
		want := slices.Sorted(slices.Values(names))
		sortByName(names, func(s string) string { return s })
		if !slices.Equal(names, want) {
			t.Errorf("%d sorted + %d: not sorted", tc.sorted, tc.after)
		}
	}
}

// TestDomainsMatchReference: the domains built in shared buffers, with the
// shortcuts for plain names, are those of the straightforward construction.
func TestDomainsMatchReference(t *testing.T) {
	services := []*ir.Service{
		{Name: "a", Namespace: "default", FQDN: "a.default.svc.cluster.local", ClusterIPs: []string{"10.0.0.1", "fd00::1"}},
		{Name: "b", Namespace: "other", FQDN: "b.other.svc.cluster.local", ClusterIPs: []string{"10.0.0.1"}},
		{Name: "B", Namespace: "other", FQDN: "B.other.svc.cluster.local"},
		{Name: "c", Namespace: "default", FQDN: "a.default.svc", Headless: true},
		{Name: "d:80", Namespace: "default", FQDN: "d.default.svc.cluster.local"},
		{Name: "é", Namespace: "default", FQDN: "É.default.svc.cluster.local", ClusterIPs: []string{"::ffff:10.0.0.9"}},
		{Name: "", Namespace: "default", FQDN: "x.example"},
		{Name: "A", Namespace: "DEFAULT", FQDN: "A.DEFAULT"},
		{Name: "f", Namespace: "default", FQDN: "F.DEFAULT.SVC.CLUSTER.LOCAL", ClusterIPs: []string{"10.0.0.2", "10.0.0.2"}},
	}
	proxy := newProxy()
	b := newBuilder(newMesh(proxy, services...), proxy)
	claimed, refClaimed := claims{"*": {}}, map[string]bool{"*": true}
	for _, s := range b.services {
		got := b.domains(s, 8080, claimed)
		want := referenceDomains(proxy.Namespace, s, 8080, refClaimed)
		if !slices.Equal(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", s.FQDN, got, want)
		}
		if len(got) > b.maxDomains(s) {
			t.Errorf("%s: %d domains, maxDomains %d", s.FQDN, len(got), b.maxDomains(s))
		}
	}
}

// referenceDomains is builder.domains without buffers or shortcuts.
func referenceDomains(proxyNS string, s *service, port uint32, claimed map[string]bool) []string {
	var hosts []string
	if s.Name != "" && s.Namespace != "" {
		if s.Namespace == proxyNS {
			hosts = append(hosts, s.Name)
		}
		hosts = append(hosts, s.Name+"."+s.Namespace, s.Name+"."+s.Namespace+".svc")
	}
	hosts = append(hosts, s.FQDN)
	if s.Headless {
		hosts = append(hosts, "*."+s.FQDN)
	}
	for _, ip := range s.ips {
		if ip.Is6() {
			hosts = append(hosts, "["+ip.String()+"]")
		} else {
			hosts = append(hosts, ip.String())
		}
	}
	var out []string
	for _, h := range hosts {
		if strings.Contains(h, ":") && !strings.HasPrefix(h, "[") {
			continue
		}
		if key := strings.ToLower(h); !claimed[key] {
			claimed[key] = true
			out = append(out, h, h+":"+strconv.FormatUint(uint64(port), 10))
		}
	}
	return out
}

func TestPlainNames(t *testing.T) {
	for _, tc := range []struct {
		s    ir.Service
		want bool
	}{
		{ir.Service{Name: "a", Namespace: "b", FQDN: "a.b.svc.cluster.local"}, true},
		{ir.Service{Name: "A", Namespace: "b", FQDN: "a.b.svc.cluster.local"}, false},
		{ir.Service{Name: "a", Namespace: "b", FQDN: "a.b:80"}, false},
		{ir.Service{Name: "a\n", Namespace: "b", FQDN: "a.b"}, false},
		{ir.Service{Name: "a\n", Namespace: "", FQDN: "a.b"}, true}, // the name is not used
		{ir.Service{Name: "é", Namespace: "b", FQDN: "a.b"}, false},
		{ir.Service{FQDN: "a\x00b"}, false},
	} {
		if got := plainNames(&tc.s); got != tc.want {
			t.Errorf("plainNames(%q, %q, %q) = %v", tc.s.Name, tc.s.Namespace, tc.s.FQDN, got)
		}
	}
}

// TestControlCharacterInDomain: a service whose domains would carry a
// control character loses its virtual host, with an error on the Service.
func TestControlCharacterInDomain(t *testing.T) {
	bad := newService("bad", "default", withEndpoints(1, 1))
	bad.FQDN = "bad\r.default.svc.cluster.local"
	good := newService("good", "default", withClusterIP("10.96.0.2"), withEndpoints(1, 2))
	proxy := newProxy()
	res, err := ForProxy(newMesh(proxy, bad, good), proxy)
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 || !strings.Contains(errs[0].Error(), "control character") {
		t.Fatalf("want one control character error, got %v", err)
	}
	checkValid(t, res)
	hosts := routesByHost(res)
	if _, ok := hosts["good.default.svc.cluster.local:80"]; !ok || len(hosts) != 2 {
		t.Errorf("want the good host and allow_any, got %v", slices.Sorted(maps.Keys(hosts)))
	}
}

// TestLargeMeshValid: the benchmark's mesh, whose clusters, endpoints and
// route configuration skip ValidateAll during generation, passes it.
func TestLargeMeshValid(t *testing.T) {
	mesh, proxy := benchMesh()
	res := mustGenerate(t, mesh, proxy)
	checkValid(t, res)
	if len(res.Clusters) != 1004 || len(res.Endpoints) != 1000 {
		t.Errorf("%d clusters, %d endpoints resources", len(res.Clusters), len(res.Endpoints))
	}
}

// TestAddrTextMatchesString keeps netip's AppendTo (used for domains) and
// String (used before) in agreement.
func TestAddrTextMatchesString(t *testing.T) {
	for _, s := range []string{"10.0.0.1", "fd00::1", "::ffff:10.0.0.1", "2001:db8::8a2e:370:7334"} {
		a := netip.MustParseAddr(s)
		if got := string(a.AppendTo(nil)); got != a.String() {
			t.Errorf("%s: AppendTo %q, String %q", s, got, a.String())
		}
	}
}

// TestSubsetsShareEndpoints: the clusters of subsets use the endpoint
// messages of their service port's base cluster.
func TestSubsetsShareEndpoints(t *testing.T) {
	s := newService("reviews", "default", withEndpoints(4, 1))
	for i, ep := range s.Endpoints {
		ep.Labels["version"] = []string{"v1", "v2"}[i%2]
	}
	s.Subsets = []*ir.Subset{
		{Name: "v1", Labels: map[string]string{"version": "v1"}},
		{Name: "v2", Labels: map[string]string{"version": "v2"}},
	}
	proxy := newProxy()
	res := mustGenerate(t, newMesh(proxy, s), proxy)
	checkValid(t, res)
	byName := map[string][]*endpointv3.LbEndpoint{}
	for _, cla := range res.Endpoints {
		for _, g := range cla.Endpoints {
			byName[cla.ClusterName] = append(byName[cla.ClusterName], g.LbEndpoints...)
		}
	}
	base := byName["outbound|80||reviews.default.svc.cluster.local"]
	v1, v2 := byName["outbound|80|v1|reviews.default.svc.cluster.local"], byName["outbound|80|v2|reviews.default.svc.cluster.local"]
	if len(base) != 4 || len(v1) != 2 || len(v2) != 2 {
		t.Fatalf("endpoints: base %d, v1 %d, v2 %d", len(base), len(v1), len(v2))
	}
	if v1[0] != base[0] || v1[1] != base[2] || v2[0] != base[1] || v2[1] != base[3] {
		t.Error("subset endpoints are not the base cluster's messages")
	}
}
