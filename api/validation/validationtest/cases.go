// Package validationtest holds the cases that every caller of api/validation
// must agree on: admission (webhook/handler), the status reconcilers
// (controllers) and the translator (xds/translate). Each caller's test runs
// every case and checks the verdict: accepted, or refused naming the fields
// listed here. One table, so that a rule added to api/validation is checked
// through all three callers by adding a case here.
package validationtest

import (
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// Namespace is the namespace of the cases' namespaced objects.
const Namespace = "shop"

// Host is the Service every case's route and policy name ("reviews", port 80 named http).
const Host = "reviews"

// Case is one object and the verdict every caller must reach on it.
type Case struct {
	// Name says what the case checks.
	Name string
	// Object is a *MeshRoute, *DestinationPolicy, *PeerAuthentication or *Mesh.
	Object runtime.Object
	// Fields are the fields the refusal names, in the order api/validation
	// reports them; empty when every caller accepts the object.
	Fields []string
	// SchemaRefuses is set when the API server's schema or CEL refuses the
	// object before admission webhooks run (api/validation keeps these
	// rules as a second line for objects that did not pass through it).
	SchemaRefuses bool
}

// Refused says whether the callers must refuse the object.
func (c Case) Refused() bool { return len(c.Fields) > 0 }

// Kind is the object's kind.
func (c Case) Kind() string {
	switch c.Object.(type) {
	case *meshv1alpha1.MeshRoute:
		return "MeshRoute"
	case *meshv1alpha1.DestinationPolicy:
		return "DestinationPolicy"
	case *meshv1alpha1.PeerAuthentication:
		return "PeerAuthentication"
	default:
		return "Mesh"
	}
}

// Cases returns the table, freshly built (callers may modify it).
func Cases() []Case {
	return slices.Concat(meshRouteCases(), meshRouteRegexCases(), destinationPolicyCases(), peerAuthenticationCases(), meshCases())
}

func meta(name string, annotations map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: Namespace, Generation: 1, Annotations: annotations,
		CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
}

// route is a MeshRoute with one rule to Host, changed by edit.
func route(name string, edit func(*meshv1alpha1.HTTPRule)) *meshv1alpha1.MeshRoute {
	rule := meshv1alpha1.HTTPRule{Route: []meshv1alpha1.Destination{{Host: Host}}}
	if edit != nil {
		edit(&rule)
	}
	return &meshv1alpha1.MeshRoute{
		ObjectMeta: meta(name, nil),
		Spec:       meshv1alpha1.MeshRouteSpec{Hosts: []string{Host}, HTTP: []meshv1alpha1.HTTPRule{rule}},
	}
}

func pathMatch(t meshv1alpha1.MatchType, v string) []meshv1alpha1.HTTPMatch {
	return []meshv1alpha1.HTTPMatch{{Path: &meshv1alpha1.PathMatch{Type: t, Value: v}}}
}

func weighted(host string, w int32) meshv1alpha1.Destination {
	return meshv1alpha1.Destination{Host: host, Weight: &w}
}

func meshRouteCases() []Case {
	return []Case{
		{Name: "plain route", Object: route("plain", nil)},
		{Name: "duplicate rule names", Object: func() *meshv1alpha1.MeshRoute {
			mr := route("dup-names", func(r *meshv1alpha1.HTTPRule) { r.Name = "a" })
			mr.Spec.HTTP = append(mr.Spec.HTTP, *mr.Spec.HTTP[0].DeepCopy())
			return mr
		}(), Fields: []string{"spec.http[1].name"}},
		{Name: "route and redirect", SchemaRefuses: true, Object: route("route-and-redirect", func(r *meshv1alpha1.HTTPRule) {
			r.Redirect = &meshv1alpha1.Redirect{URI: "/elsewhere"}
		}), Fields: []string{"spec.http[0].redirect"}},
		{Name: "neither route nor redirect", SchemaRefuses: true, Object: route("no-route", func(r *meshv1alpha1.HTTPRule) {
			r.Route = nil
		}), Fields: []string{"spec.http[0].route"}},
		{Name: "weights not summing to 100", SchemaRefuses: true, Object: route("weights", func(r *meshv1alpha1.HTTPRule) {
			r.Route = []meshv1alpha1.Destination{weighted(Host, 50), weighted("ratings", 40)}
		}), Fields: []string{"spec.http[0].route"}},
		{Name: "weights summing to 100", Object: route("weights-ok", func(r *meshv1alpha1.HTTPRule) {
			r.Route = []meshv1alpha1.Destination{weighted(Host, 60), weighted("ratings", 40)}
		})},
		{Name: "prefix rewrite without a match", Object: route("rewrite-no-match", func(r *meshv1alpha1.HTTPRule) {
			r.Rewrite = &meshv1alpha1.Rewrite{Prefix: "/v2/"}
		}), Fields: []string{"spec.http[0].rewrite.prefix"}},
		{Name: "prefix rewrite with an Exact match", Object: route("rewrite-exact", func(r *meshv1alpha1.HTTPRule) {
			r.Match, r.Rewrite = pathMatch(meshv1alpha1.MatchExact, "/v1"), &meshv1alpha1.Rewrite{Prefix: "/v2/"}
		}), Fields: []string{"spec.http[0].rewrite.prefix"}},
		{Name: "prefix rewrite with a Prefix match", Object: route("rewrite-prefix", func(r *meshv1alpha1.HTTPRule) {
			r.Match, r.Rewrite = pathMatch(meshv1alpha1.MatchPrefix, "/v1/"), &meshv1alpha1.Rewrite{Prefix: "/v2/"}
		})},
		{Name: "the same destination twice", Object: route("dup-destination", func(r *meshv1alpha1.HTTPRule) {
			r.Route = []meshv1alpha1.Destination{weighted(Host, 50), weighted(Host, 50)}
		}), Fields: []string{"spec.http[0].route[1]"}},
		{Name: "per-try timeout above the timeout", Object: route("per-try", func(r *meshv1alpha1.HTTPRule) {
			r.Timeout = &metav1.Duration{Duration: time.Second}
			r.Retries = &meshv1alpha1.Retries{Attempts: 2, PerTryTimeout: &metav1.Duration{Duration: 2 * time.Second}}
		}), Fields: []string{"spec.http[0].retries.perTryTimeout"}},
		{Name: "per-try timeout within the timeout", Object: route("per-try-ok", func(r *meshv1alpha1.HTTPRule) {
			r.Timeout = &metav1.Duration{Duration: 2 * time.Second}
			r.Retries = &meshv1alpha1.Retries{Attempts: 2, PerTryTimeout: &metav1.Duration{Duration: time.Second}}
		})},
		{Name: "editing the host header", Object: route("edit-host", func(r *meshv1alpha1.HTTPRule) {
			r.Headers = &meshv1alpha1.HeaderEdits{Request: &meshv1alpha1.HeaderOperations{Set: map[string]string{"host": "x"}}}
		}), Fields: []string{"spec.http[0].headers.request.set[host]"}},
		{Name: "removing a pseudo-header", Object: route("edit-pseudo", func(r *meshv1alpha1.HTTPRule) {
			r.Headers = &meshv1alpha1.HeaderEdits{Response: &meshv1alpha1.HeaderOperations{Remove: []string{":status"}}}
		}), Fields: []string{"spec.http[0].headers.response.remove[0]"}},
	}
}

func meshRouteRegexCases() []Case {
	return []Case{
		{Name: "regex Envoy cannot parse", SchemaRefuses: true, Object: route("regex-bad", func(r *meshv1alpha1.HTTPRule) {
			r.Match = pathMatch(meshv1alpha1.MatchRegularExpression, "/(a")
		}), Fields: []string{"spec.http[0].match[0].path.value"}},
		{Name: "regex above Envoy's program size", Object: route("regex-large", func(r *meshv1alpha1.HTTPRule) {
			r.Match = pathMatch(meshv1alpha1.MatchRegularExpression, "/items/[a-z0-9]{0,100}")
		}), Fields: []string{"spec.http[0].match[0].path.value"}},
		{Name: "regex at Envoy's program size", Object: route("regex-at-limit", func(r *meshv1alpha1.HTTPRule) {
			r.Match = pathMatch(meshv1alpha1.MatchRegularExpression, "/[a-z0-9]{0,31}")
		})},
		{Name: "regexes above the total size", Object: regexesAboveTotal(), Fields: []string{"spec.http"}},
	}
}

// regexesAboveTotal has two rules of five 1000-byte regular expressions each:
// 10010 bytes, above re2.MaxTotalBytes.
func regexesAboveTotal() *meshv1alpha1.MeshRoute {
	mr := route("regex-total", func(r *meshv1alpha1.HTTPRule) {
		for range 5 {
			r.Match = append(r.Match, pathMatch(meshv1alpha1.MatchRegularExpression, "/"+strings.Repeat("a", 1000))...)
		}
	})
	second := *mr.Spec.HTTP[0].DeepCopy()
	second.Name = "second"
	mr.Spec.HTTP = append(mr.Spec.HTTP, second)
	return mr
}

func policy(name string, annotations map[string]string, tp *meshv1alpha1.TrafficPolicy, subsets ...meshv1alpha1.Subset) *meshv1alpha1.DestinationPolicy {
	return &meshv1alpha1.DestinationPolicy{
		ObjectMeta: meta(name, annotations),
		Spec:       meshv1alpha1.DestinationPolicySpec{Host: Host, TrafficPolicy: tp, Subsets: subsets},
	}
}

func outlier(maxEjection, minHealth *int32) *meshv1alpha1.TrafficPolicy {
	return &meshv1alpha1.TrafficPolicy{OutlierDetection: &meshv1alpha1.OutlierDetection{
		MaxEjectionPercent: maxEjection, MinHealthPercent: minHealth}}
}

func percent(n int32) *int32 { return &n }

func subset(name, version string, tp *meshv1alpha1.TrafficPolicy) meshv1alpha1.Subset {
	return meshv1alpha1.Subset{Name: name, Labels: map[string]string{"version": version}, TrafficPolicy: tp}
}

func destinationPolicyCases() []Case {
	allow := map[string]string{meshv1alpha1.AnnotationAllowAggressiveEjection: "true"}
	return []Case{
		{Name: "plain policy", Object: policy("plain", nil, nil, subset("v1", "v1", nil))},
		{Name: "duplicate subset names", SchemaRefuses: true, Object: policy("dup-subsets", nil, nil,
			subset("v1", "v1", nil), subset("v1", "v2", nil)), Fields: []string{"spec.subsets[1].name"}},
		{Name: "subset label key a pod cannot carry", Object: policy("bad-label", nil, nil,
			meshv1alpha1.Subset{Name: "v1", Labels: map[string]string{"-version": "v1"}}),
			Fields: []string{"spec.subsets[0].labels[-version]"}},
		{Name: "consistent-hash header Envoy refuses", Object: policy("hash-header", nil, &meshv1alpha1.TrafficPolicy{
			LoadBalancer: &meshv1alpha1.LoadBalancer{ConsistentHash: &meshv1alpha1.ConsistentHash{HTTPHeaderName: "X-User"}}}),
			Fields: []string{"spec.trafficPolicy.loadBalancer.consistentHash.httpHeaderName"}},
		{Name: "outlier detection that can eject the whole pool", Object: policy("whole-pool", nil, outlier(percent(100), percent(0))),
			Fields: []string{"spec.trafficPolicy.outlierDetection.maxEjectionPercent"}},
		{Name: "whole-pool ejection in a subset", Object: policy("whole-pool-subset", nil, nil, subset("v1", "v1", outlier(percent(100), percent(0)))),
			Fields: []string{"spec.subsets[0].trafficPolicy.outlierDetection.maxEjectionPercent"}},
		{Name: "whole-pool ejection, annotated", Object: policy("whole-pool-allowed", allow, outlier(percent(100), percent(0)))},
		{Name: "maxEjectionPercent 99 with minHealthPercent 0 keeps an endpoint", Object: policy("keeps-one", nil, outlier(percent(99), percent(0)))},
		{Name: "maxEjectionPercent 100 with a panic threshold", Object: policy("with-panic", nil, outlier(percent(100), percent(10)))},
		{Name: "consecutive5xxErrors 1", Object: policy("one-error", nil, &meshv1alpha1.TrafficPolicy{
			OutlierDetection: &meshv1alpha1.OutlierDetection{Consecutive5xxErrors: percent(1)}})},
	}
}

func peerAuthenticationCases() []Case {
	pa := func(name string, labels map[string]string) *meshv1alpha1.PeerAuthentication {
		p := &meshv1alpha1.PeerAuthentication{ObjectMeta: meta(name, nil)}
		p.Spec.MTLS.Mode = meshv1alpha1.PeerMTLSStrict
		if labels != nil {
			p.Spec.Selector = &meshv1alpha1.WorkloadSelector{MatchLabels: labels}
		}
		return p
	}
	return []Case{
		{Name: "namespace-wide peer authentication", Object: pa("namespace-wide", nil)},
		{Name: "workload peer authentication", Object: pa("workload", map[string]string{"app": Host})},
		{Name: "selector label value a pod cannot carry", Object: pa("bad-selector", map[string]string{"app": "not a label value"}),
			Fields: []string{"spec.selector.matchLabels[app]"}},
	}
}

func meshCases() []Case {
	mesh := func(name string) *meshv1alpha1.Mesh {
		return &meshv1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1}}
	}
	limits := mesh(meshv1alpha1.MeshName)
	limits.Spec.Proxy.Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
	}
	return []Case{
		{Name: "the default mesh", Object: mesh(meshv1alpha1.MeshName)},
		{Name: "a mesh not named default", SchemaRefuses: true, Object: mesh("prod"), Fields: []string{"metadata.name"}},
		{Name: "proxy requests above limits", Object: limits, Fields: []string{"spec.proxy.resources.requests[memory]"}},
		{Name: "trace collector host:port", Object: collector("otel.observability.svc:4317")},
		{Name: "trace collector IP:port", Object: collector("10.0.0.9:4317")},
		{Name: "trace collector without port", Object: collector("otel.observability.svc"), Fields: []string{collectorField}},
		{Name: "trace collector port out of range", Object: collector("otel:70000"), Fields: []string{collectorField}},
		{Name: "trace collector host not a DNS name", Object: collector("Otel_Collector:4317"), Fields: []string{collectorField}},
	}
}

const collectorField = "spec.telemetry.tracing.collector"

// collector is the default Mesh exporting spans to addr.
func collector(addr string) *meshv1alpha1.Mesh {
	m := &meshv1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: meshv1alpha1.MeshName, Generation: 1}}
	m.Spec.Telemetry.Tracing.Collector = addr
	return m
}

// CheckAccepted checks an Accepted condition against the case's verdict:
// False when the case is refused, with a message that names each of the
// case's fields in order ("field: ..."), True otherwise. It returns what is
// wrong, or "" when the condition agrees.
func (c Case) CheckAccepted(acc *metav1.Condition) string {
	if acc == nil {
		return "no Accepted condition"
	}
	if refused := acc.Status == metav1.ConditionFalse; refused != c.Refused() {
		return "Accepted " + string(acc.Status) + " (" + acc.Message + "), want refused = " + strconv.FormatBool(c.Refused())
	}
	rest := acc.Message
	for _, f := range c.Fields {
		i := strings.Index(rest, f+": ")
		if i < 0 {
			return "message " + strconv.Quote(acc.Message) + " does not name " + f + " (in order)"
		}
		rest = rest[i+len(f):]
	}
	return ""
}
