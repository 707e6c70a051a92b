package ir

import "testing"

func TestScopeIncludes(t *testing.T) {
	s := &Scope{Namespaces: []string{"a", "shop"}, Hosts: []string{"pay.billing.svc.cluster.local"}}
	for _, tc := range []struct {
		svc  Service
		want bool
	}{
		{Service{Namespace: "shop", FQDN: "web.shop.svc.cluster.local"}, true},
		{Service{Namespace: "billing", FQDN: "pay.billing.svc.cluster.local"}, true},
		{Service{Namespace: "billing", FQDN: "audit.billing.svc.cluster.local"}, false},
	} {
		if got := s.Includes(&tc.svc); got != tc.want {
			t.Errorf("%s: Includes %v, want %v", tc.svc.FQDN, got, tc.want)
		}
		if !(*Scope)(nil).Includes(&tc.svc) {
			t.Errorf("%s: a nil scope must include every service", tc.svc.FQDN)
		}
	}
	p := &Proxy{ID: "x", Scope: &Scope{Hosts: []string{"b", "a"}}}
	if err := p.Validate(); err == nil {
		t.Error("a proxy with unsorted scope hosts is valid")
	}
}
