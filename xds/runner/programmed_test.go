package runner

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/xds/ir"
	"github.com/capstanmesh/capstan/xds/translate"
)

// ackFixture is a mesh of two namespaces: a and b each have a sidecar; the
// route and policy of service a/web are in scope of the sidecar of a only.
func ackFixture(routeGen int64) *translate.Result {
	route := ir.ObjectRef{Kind: translate.KindMeshRoute, Namespace: "a", Name: "web"}
	policy := ir.ObjectRef{Kind: translate.KindDestinationPolicy, Namespace: "a", Name: "web"}
	return &translate.Result{
		Mesh: &ir.Mesh{
			Services: []*ir.Service{{Name: "web", Namespace: "a", RouteSource: &route, PolicySource: &policy,
				Routes: []*ir.HTTPRoute{{Name: "a/web/0", Source: route}}}},
			Proxies: []*ir.Proxy{
				{ID: "sidecar~1", Kind: ir.ProxySidecar, Name: "p1", Namespace: "a", Scope: &ir.Scope{Namespaces: []string{"a"}}},
				{ID: "sidecar~2", Kind: ir.ProxySidecar, Name: "p2", Namespace: "a", Scope: &ir.Scope{Namespaces: []string{"a"}}},
				{ID: "sidecar~3", Kind: ir.ProxySidecar, Name: "p3", Namespace: "b", Scope: &ir.Scope{Namespaces: []string{"b"}}},
			},
		},
		Statuses: []translate.ObjectStatus{
			{Ref: route, Generation: routeGen, Conditions: []metav1.Condition{{Type: meshv1alpha1.ConditionProgrammed, Status: metav1.ConditionTrue, Reason: meshv1alpha1.ReasonProgrammed}}},
			{Ref: policy, Generation: 1, Conditions: []metav1.Condition{{Type: meshv1alpha1.ConditionProgrammed, Status: metav1.ConditionTrue, Reason: meshv1alpha1.ReasonProgrammed}}},
		},
	}
}

func countsOf(t *testing.T, res *translate.Result, acks map[string]ProxyAck, table *ackTable) []translate.ObjectStatus {
	t.Helper()
	return withProxyCounts(res.Statuses, table.count(acks))
}

func TestProxyCountsFollowACKsOfTheCurrentGeneration(t *testing.T) {
	table := newAckTable()
	res := ackFixture(1)
	table.setCarried(res)
	got := countsOf(t, res, map[string]ProxyAck{"sidecar~1": {InSync: true}}, table)
	if p := got[0].Proxies; p.Summary != "1/2" || p.Programmed != 1 || p.Total != 2 {
		t.Fatalf("route after one of two carrying proxies ACKed: %+v, want 1/2 (the sidecar of b does not carry it)", p)
	}
	got = countsOf(t, res, map[string]ProxyAck{"sidecar~1": {InSync: true}, "sidecar~2": {InSync: true}, "sidecar~3": {InSync: true}}, table)
	if p := got[0].Proxies; p.Summary != "2/2" {
		t.Fatalf("route after both ACKed: %+v, want 2/2", p)
	}

	// Generation 2: published, not ACKed yet; proxy 2 NACKs it.
	res = ackFixture(2)
	table.setCarried(res)
	got = countsOf(t, res, map[string]ProxyAck{"sidecar~2": {NackType: "rds", NackMessage: "regex too big"}}, table)
	if p := got[0].Proxies; p.Summary != "0/2" {
		t.Errorf("route at a new generation nobody ACKed: %+v, want 0/2", p)
	}
	c := meta.FindStatusCondition(got[0].Conditions, meshv1alpha1.ConditionProgrammed)
	if c.Status != metav1.ConditionFalse || c.Reason != meshv1alpha1.ReasonRejected ||
		!strings.Contains(c.Message, "a/p2") || !strings.Contains(c.Message, "regex too big") {
		t.Errorf("Programmed after a NACK: %+v, want False/Rejected naming a/p2 and Envoy's text", c)
	}
	if p := got[1].Proxies; p.Summary != "2/2" {
		t.Errorf("unchanged policy: %+v, want still 2/2 (its generation was ACKed)", p)
	}
	if c := meta.FindStatusCondition(got[1].Conditions, meshv1alpha1.ConditionProgrammed); c.Status != metav1.ConditionTrue {
		t.Errorf("unchanged policy after another object's NACK: %+v, want Programmed True", c)
	}
	if c := meta.FindStatusCondition(res.Statuses[0].Conditions, meshv1alpha1.ConditionProgrammed); c.Status != metav1.ConditionTrue {
		t.Errorf("withProxyCounts changed its input: %+v", c)
	}

	// Proxy 1 ACKs generation 2: counted again; proxy 2 still rejects.
	got = countsOf(t, res, map[string]ProxyAck{"sidecar~1": {InSync: true}, "sidecar~2": {NackType: "rds", NackMessage: "regex too big"}}, table)
	if p := got[0].Proxies; p.Summary != "1/2" {
		t.Errorf("route after proxy 1 ACKed generation 2: %+v, want 1/2", p)
	}
}

func TestTruncateKeepsRunes(t *testing.T) {
	s := strings.Repeat("é", 10)
	got := truncate(s, 5)
	if got != "éé…" {
		t.Errorf("truncate(%q, 5) = %q, want %q", s, got, "éé…")
	}
	if got := truncate("short", 10); got != "short" {
		t.Errorf("truncate(short) = %q", got)
	}
}
