package controllers

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/api/validation/validationtest"
)

// route builds a MeshRoute with one rule to reviews, changed by opts.
func route(opts ...func(*meshv1alpha1.HTTPRule)) *meshv1alpha1.MeshRoute {
	rule := meshv1alpha1.HTTPRule{Route: []meshv1alpha1.Destination{{Host: "reviews"}}}
	for _, o := range opts {
		o(&rule)
	}
	return &meshv1alpha1.MeshRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "reviews", Namespace: "default", Generation: 1},
		Spec:       meshv1alpha1.MeshRouteSpec{Hosts: []string{"reviews"}, HTTP: []meshv1alpha1.HTTPRule{rule}},
	}
}

func pathMatch(t meshv1alpha1.MatchType, v string) func(*meshv1alpha1.HTTPRule) {
	return func(r *meshv1alpha1.HTTPRule) {
		r.Match = append(r.Match, meshv1alpha1.HTTPMatch{Path: &meshv1alpha1.PathMatch{Type: t, Value: v}})
	}
}

func rewritePrefix(p string) func(*meshv1alpha1.HTTPRule) {
	return func(r *meshv1alpha1.HTTPRule) { r.Rewrite = &meshv1alpha1.Rewrite{Prefix: p} }
}

func TestValidateMeshRoute(t *testing.T) {
	cases := []struct {
		name string
		mr   *meshv1alpha1.MeshRoute
		want string
	}{
		{"plain route", route(), ""},
		{"prefix rewrite with a Prefix match", route(pathMatch(meshv1alpha1.MatchPrefix, "/v1/"), rewritePrefix("/v2/")), ""},
		{"prefix rewrite with a defaulted path type", route(pathMatch("", "/v1/"), rewritePrefix("/v2/")), ""},
		{"prefix rewrite without a match", route(rewritePrefix("/v2/")),
			"spec.http[0].rewrite.prefix: needs a Prefix path match, and the rule has no match"},
		{"prefix rewrite with an Exact match", route(pathMatch(meshv1alpha1.MatchExact, "/v1"), rewritePrefix("/v2/")),
			"spec.http[0].rewrite.prefix: needs every match of the rule to have a Prefix path match"},
		{"prefix rewrite with one header-only match", route(pathMatch(meshv1alpha1.MatchPrefix, "/v1/"), rewritePrefix("/v2/"),
			func(r *meshv1alpha1.HTTPRule) {
				r.Match = append(r.Match, meshv1alpha1.HTTPMatch{Headers: []meshv1alpha1.HeaderMatch{{Name: "x", Value: "y"}}})
			}),
			"spec.http[0].rewrite.prefix: needs every match of the rule to have a Prefix path match"},
		{"uri rewrite needs no match", route(func(r *meshv1alpha1.HTTPRule) { r.Rewrite = &meshv1alpha1.Rewrite{URI: "/x"} }), ""},
		{"bad regex", route(pathMatch(meshv1alpha1.MatchRegularExpression, "/(a")),
			"spec.http[0].match[0].path.value: not a valid RE2 regular expression: error parsing regexp: missing closing ): `/(a`"},
		{"regex above Envoy's program size limit", route(pathMatch(meshv1alpha1.MatchRegularExpression, "/items/[a-z0-9]{0,100}")),
			"spec.http[0].match[0].path.value: RE2 program size 311 exceeds the limit of 100 (Envoy's re2.max_program_size.error_level); " +
				"use a simpler regular expression (fewer or smaller repetitions, or a Prefix match)"},
		{"header regex at the limit", route(func(r *meshv1alpha1.HTTPRule) {
			r.Match = []meshv1alpha1.HTTPMatch{{Headers: []meshv1alpha1.HeaderMatch{{Name: "x", Type: meshv1alpha1.MatchRegularExpression, Value: "[a-z0-9]{0,32}"}}}}
		}), ""},
		{"query regex above the limit", route(func(r *meshv1alpha1.HTTPRule) {
			r.Match = []meshv1alpha1.HTTPMatch{{QueryParams: []meshv1alpha1.QueryParamMatch{{Name: "q", Type: meshv1alpha1.MatchRegularExpression, Value: "[a-z0-9]{0,33}"}}}}
		}), "spec.http[0].match[0].queryParams[0].value: RE2 program size 103 exceeds the limit of 100 (Envoy's re2.max_program_size.error_level); " +
			"use a simpler regular expression (fewer or smaller repetitions, or a Prefix match)"},
		{"regexes above the total size", route(func(r *meshv1alpha1.HTTPRule) {
			for range 9 {
				r.Match = append(r.Match, meshv1alpha1.HTTPMatch{Path: &meshv1alpha1.PathMatch{
					Type: meshv1alpha1.MatchRegularExpression, Value: "/" + strings.Repeat("a", 1000)}})
			}
		}), "spec.http: the regular expressions total 9009 bytes; one MeshRoute may have at most 8192"},
		{"regex-looking Prefix is fine", route(pathMatch(meshv1alpha1.MatchPrefix, "/(a")), ""},
		{"perTryTimeout above timeout", route(func(r *meshv1alpha1.HTTPRule) {
			r.Timeout = &metav1.Duration{Duration: 1e9}
			r.Retries = &meshv1alpha1.Retries{Attempts: 2, PerTryTimeout: &metav1.Duration{Duration: 2e9}}
		}), "spec.http[0].retries.perTryTimeout: must not exceed the rule's timeout 1s, or no retry can happen"},
		{"duplicate destination", route(func(r *meshv1alpha1.HTTPRule) {
			r.Route = []meshv1alpha1.Destination{
				{Host: "reviews", Subset: "v1", Weight: ptr.To[int32](50)},
				{Host: "reviews", Subset: "v1", Weight: ptr.To[int32](50)},
			}
		}), "spec.http[0].route[1]: the same destination as route[0]; merge their weights"},
		{"editing host", route(func(r *meshv1alpha1.HTTPRule) {
			r.Headers = &meshv1alpha1.HeaderEdits{Request: &meshv1alpha1.HeaderOperations{Set: map[string]string{"host": "x"}}}
		}), "spec.http[0].headers.request.set[host]: the host header cannot be edited; use rewrite.authority"},
		{"removing a pseudo-header", route(func(r *meshv1alpha1.HTTPRule) {
			r.Headers = &meshv1alpha1.HeaderEdits{Response: &meshv1alpha1.HeaderOperations{Remove: []string{":status"}}}
		}), "spec.http[0].headers.response.remove[0]: must be a lower-case HTTP header name (pseudo-headers cannot be edited)"},
		{"duplicate rule names", func() *meshv1alpha1.MeshRoute {
			mr := route(func(r *meshv1alpha1.HTTPRule) { r.Name = "a" })
			mr.Spec.HTTP = append(mr.Spec.HTTP, mr.Spec.HTTP[0])
			return mr
		}(), "spec.http[1].name: duplicates the name of spec.http[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, ConditionMessage(ValidateMeshRoute(tc.mr))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateDestinationPolicy(t *testing.T) {
	dp := func(annotations map[string]string, od *meshv1alpha1.OutlierDetection, labels map[string]string) *meshv1alpha1.DestinationPolicy {
		return &meshv1alpha1.DestinationPolicy{
			ObjectMeta: metav1.ObjectMeta{Annotations: annotations},
			Spec: meshv1alpha1.DestinationPolicySpec{
				Host:          "reviews",
				TrafficPolicy: &meshv1alpha1.TrafficPolicy{OutlierDetection: od},
				Subsets:       []meshv1alpha1.Subset{{Name: "v1", Labels: labels}},
			},
		}
	}
	aggressive := &meshv1alpha1.OutlierDetection{MaxEjectionPercent: ptr.To[int32](100), MinHealthPercent: ptr.To[int32](0)}
	cases := []struct {
		name string
		dp   *meshv1alpha1.DestinationPolicy
		want string
	}{
		{"defaults", dp(nil, &meshv1alpha1.OutlierDetection{MaxEjectionPercent: ptr.To[int32](50), MinHealthPercent: ptr.To[int32](50)}, map[string]string{"version": "v1"}), ""},
		{"ejects everything", dp(nil, aggressive, map[string]string{"version": "v1"}),
			`spec.trafficPolicy.outlierDetection.maxEjectionPercent: with minHealthPercent 0 this can eject every endpoint under load; keep maxEjectionPercent below 100, or annotate the policy capstan.dev/allow-aggressive-ejection: "true"`},
		{"ejects everything, allowed", dp(map[string]string{meshv1alpha1.AnnotationAllowAggressiveEjection: "true"}, aggressive, map[string]string{"version": "v1"}), ""},
		{"100% ejection with a panic threshold", dp(nil, &meshv1alpha1.OutlierDetection{MaxEjectionPercent: ptr.To[int32](100), MinHealthPercent: ptr.To[int32](50)}, map[string]string{"version": "v1"}), ""},
		{"bad label key", dp(nil, nil, map[string]string{"-version": "v1"}),
			"spec.subsets[0].labels[-version]: invalid label key: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, ConditionMessage(ValidateDestinationPolicy(tc.dp))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidatePeerAuthentication(t *testing.T) {
	pa := &meshv1alpha1.PeerAuthentication{Spec: meshv1alpha1.PeerAuthenticationSpec{
		Selector: &meshv1alpha1.WorkloadSelector{MatchLabels: map[string]string{"app": "ratings", "tier": "a b"}},
	}}
	got := ConditionMessage(ValidatePeerAuthentication(pa))
	want := "spec.selector.matchLabels[tier]: invalid label value: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if errs := ValidatePeerAuthentication(&meshv1alpha1.PeerAuthentication{}); len(errs) != 0 {
		t.Errorf("namespace-wide policy: %v", errs)
	}
}

func TestMeshConditions(t *testing.T) {
	withLimits := func(m *meshv1alpha1.Mesh) *meshv1alpha1.Mesh {
		m.Spec.Proxy.Resources = corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
		}
		return m
	}
	mesh := func(name string) *meshv1alpha1.Mesh {
		return &meshv1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: name}}
	}
	type summary struct{ Type, Status, Reason, Message string }
	cases := []struct {
		name string
		mesh *meshv1alpha1.Mesh
		want []summary
	}{
		{"default", mesh("default"), []summary{
			{"Accepted", "True", "Accepted", "the object is valid"},
			{"Ready", "True", "Ready", "the mesh is ready"},
		}},
		{"not default", mesh("prod"), []summary{
			{"Accepted", "False", "NotDefault", `metadata.name: the Mesh must be named "default"; this one is ignored`},
			{"Ready", "False", "NotReady", `the Mesh is not accepted: metadata.name: the Mesh must be named "default"; this one is ignored`},
		}},
		{"requests above limits", withLimits(mesh("default")), []summary{
			{"Accepted", "False", "Invalid", "spec.proxy.resources.requests[memory]: must be less than or equal to the limit 256Mi"},
			{"Ready", "False", "NotReady", "the Mesh is not accepted: spec.proxy.resources.requests[memory]: must be less than or equal to the limit 256Mi"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []summary
			for _, c := range MeshConditions(tc.mesh) {
				got = append(got, summary{c.Type, string(c.Status), c.Reason, c.Message})
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestStatusAgreesWithTheRules runs every shared case (validationtest)
// through the status reconcilers' condition computation: a case the rules
// refuse is not Accepted and the message names each field, in order; the
// others are Accepted. Admission's and the translator's tests check the same
// cases.
func TestStatusAgreesWithTheRules(t *testing.T) {
	for _, c := range validationtest.Cases() {
		t.Run(c.Kind()+"/"+c.Name, func(t *testing.T) {
			acc := meta.FindStatusCondition(specConditions(c.Object), meshv1alpha1.ConditionAccepted)
			if msg := c.CheckAccepted(acc); msg != "" {
				t.Fatal(msg)
			}
		})
	}
}

// specConditions are the conditions the status reconcilers compute from obj's spec.
func specConditions(obj runtime.Object) []metav1.Condition {
	switch o := obj.(type) {
	case *meshv1alpha1.MeshRoute:
		return MeshRouteConditions(o)
	case *meshv1alpha1.DestinationPolicy:
		return DestinationPolicyConditions(o)
	case *meshv1alpha1.PeerAuthentication:
		return PeerAuthenticationConditions(o)
	case *meshv1alpha1.Mesh:
		return MeshConditions(o)
	}
	return nil
}
