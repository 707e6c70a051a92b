package generate

import (
	"errors"
	"strings"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// checkValidGRPC checks a proxyless gRPC client's output: ValidateAll on
// everything, the reference checks (which follow API listeners), and that
// every listener is an API listener routing by RDS over ADS, as gRPC requires.
func checkValidGRPC(t *testing.T, res *Resources) {
	t.Helper()
	if err := res.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	for _, l := range res.Listeners {
		if l.GetAddress() != nil || len(l.FilterChains) > 0 {
			t.Errorf("listener %s has an address or filter chains; gRPC wants an API listener only", l.Name)
		}
		hcm := apiHCM(t, l)
		if hcm.GetRds().GetConfigSource().GetAds() == nil {
			t.Errorf("listener %s: HCM does not use RDS over ADS", l.Name)
		}
		if n := len(hcm.HttpFilters); n == 0 || hcm.HttpFilters[n-1].Name != filterRouter {
			t.Errorf("listener %s: the router is not the last HTTP filter", l.Name)
		}
	}
}

func apiHCM(t *testing.T, l *listenerv3.Listener) *hcmv3.HttpConnectionManager {
	t.Helper()
	m := &hcmv3.HttpConnectionManager{}
	if err := l.GetApiListener().GetApiListener().UnmarshalTo(m); err != nil {
		t.Fatalf("listener %s: %v", l.Name, err)
	}
	return m
}

func newGRPCProxy() *ir.Proxy {
	return &ir.Proxy{
		ID:        ir.GRPCNodeID("10.0.0.10", "client-0", testProxyNS),
		Kind:      ir.ProxyGRPC,
		Name:      "client-0",
		Namespace: testProxyNS,
		IP:        "10.0.0.10",
	}
}

// TestCheckReferencesFollowsAPIListeners: a route configuration an API
// listener names must exist — the check Snapshot.Consistent does not make.
func TestCheckReferencesFollowsAPIListeners(t *testing.T) {
	proxy := newGRPCProxy()
	res, err := ForGRPC(newMesh(proxy, newService("echo", testProxyNS, withEndpoints(2, 1))), proxy)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.CheckReferences(); err != nil {
		t.Fatalf("generated output: %v", err)
	}
	res.Routes = nil
	err = res.CheckReferences()
	if err == nil || !strings.Contains(err.Error(), "used by a listener but missing") {
		t.Fatalf("CheckReferences without route configurations = %v, want a missing route configuration", err)
	}
}

// TestForGRPCRefusesSidecars: each generator serves its own kind, and For picks it.
func TestForGRPCRefusesSidecars(t *testing.T) {
	sidecar, client := newProxy(), newGRPCProxy()
	mesh := newMesh(sidecar, newService("echo", testProxyNS, withEndpoints(1, 1)))
	mesh.Proxies = append(mesh.Proxies, client)
	if _, err := ForGRPC(mesh, sidecar); err == nil {
		t.Error("ForGRPC(sidecar) succeeded")
	}
	if _, err := ForProxy(mesh, client); err == nil {
		t.Error("ForProxy(gRPC client) succeeded")
	}
	res, err := For(mesh, client)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Listeners) == 0 || res.Listeners[0].GetApiListener() == nil {
		t.Errorf("For(gRPC client) did not use the gRPC generator: %v", res.Listeners)
	}
}

// TestGRPCWarningsAreNotErrors: a policy gRPC cannot fully honour yields
// warnings on the policy, and Split tells them from errors.
func TestGRPCWarningsAreNotErrors(t *testing.T) {
	five := uint32(5)
	svc := newService("echo", testProxyNS, withEndpoints(2, 1))
	svc.PolicySource = &ir.ObjectRef{Kind: "DestinationPolicy", Namespace: testProxyNS, Name: "echo"}
	svc.Policy = &ir.TrafficPolicy{OutlierDetection: &ir.OutlierDetection{Consecutive5xxErrors: &five, MaxEjectionPercent: 50}}
	proxy := newGRPCProxy()
	_, err := ForGRPC(newMesh(proxy, svc), proxy)
	var all Errors
	if !errors.As(err, &all) {
		t.Fatalf("ForGRPC = %v, want Errors", err)
	}
	errs, warnings := all.Split()
	if len(errs) != 0 || len(warnings) != 1 {
		t.Fatalf("errors %v, warnings %v; want one warning", errs, warnings)
	}
	want := "outlierDetection.consecutive5xxErrors is not supported by proxyless gRPC clients and is not sent to them"
	if got := warnings[0]; got.Err.Error() != want || *got.Source != *svc.PolicySource {
		t.Errorf("warning = %v, want %q on %v", got, want, svc.PolicySource)
	}
}
