package handler

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

func TestUnknownAnnotations(t *testing.T) {
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		want        []string // substrings, one per warning, in order
	}{
		{"none", nil, nil},
		{"foreign and known", map[string]string{
			"example.com/x": "1", "kubectl.kubernetes.io/last-applied-configuration": "{}",
			"capstan.dev/allow-aggressive-ejection": "true", "capstan.dev/proxy-cpu": "1",
			"sub.capstan.dev/x": "1",
		}, nil},
		{"typo", map[string]string{"capstan.dev/allow-aggressive-ejections": "true"},
			[]string{"metadata.annotations[capstan.dev/allow-aggressive-ejections]: unknown Capstan annotation"}},
		{"label as annotation, sorted", map[string]string{"capstan.dev/zz": "", "capstan.dev/inject": "enabled"},
			[]string{"capstan.dev/inject is a label, not an annotation", "capstan.dev/zz"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := UnknownAnnotations(tc.annotations)
			if len(got) != len(tc.want) {
				t.Fatalf("got %q, want %d warnings like %q", got, len(tc.want), tc.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tc.want[i]) {
					t.Errorf("warning %d = %q, want it to contain %q", i, got[i], tc.want[i])
				}
				if len(got[i]) > 256 {
					t.Errorf("warning %d is %d characters long; keep warnings short", i, len(got[i]))
				}
			}
		})
	}
}

func od(c5xx, maxEject, minHealth *int32) *meshv1alpha1.TrafficPolicy {
	return &meshv1alpha1.TrafficPolicy{OutlierDetection: &meshv1alpha1.OutlierDetection{
		Consecutive5xxErrors: c5xx, MaxEjectionPercent: maxEject, MinHealthPercent: minHealth,
	}}
}

func TestDecideDestinationPolicy(t *testing.T) {
	allow := map[string]string{meshv1alpha1.AnnotationAllowAggressiveEjection: "true"}
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		policy      *meshv1alpha1.TrafficPolicy
		subset      *meshv1alpha1.TrafficPolicy
		old         *meshv1alpha1.TrafficPolicy // the stored subset policy: an update
		wantErr     []string                    // substrings of the error
		wantWarn    []string                    // substrings, one per warning
	}{
		{name: "no traffic policy"},
		{name: "defaults (unset fields)", policy: od(nil, nil, nil)},
		{name: "sane", policy: od(ptr.To[int32](5), ptr.To[int32](50), ptr.To[int32](50))},
		{name: "consecutive5xxErrors 3", policy: od(ptr.To[int32](3), nil, nil)},
		{name: "consecutive5xxErrors 0 turns the check off", policy: od(ptr.To[int32](0), nil, nil)},
		{name: "maxEjectionPercent 100 with a panic threshold", policy: od(nil, ptr.To[int32](100), ptr.To[int32](10))},
		{name: "maxEjectionPercent 50 with minHealthPercent 0", policy: od(nil, ptr.To[int32](50), ptr.To[int32](0))},
		// The unified threshold (api/validation.WholePoolEjectionPercent):
		// the webhook used to refuse consecutive5xxErrors below 3 and
		// maxEjectionPercent above 50 with minHealthPercent 0; neither can
		// eject the whole pool, so both are admitted now, as Istio admits them.
		{name: "consecutive5xxErrors 1 is admitted: maxEjectionPercent caps the ejections", policy: od(ptr.To[int32](1), nil, nil)},
		{name: "maxEjectionPercent 99 with minHealthPercent 0 is admitted: it keeps an endpoint", policy: od(nil, ptr.To[int32](99), ptr.To[int32](0))},
		{name: "maxEjectionPercent 100 with minHealthPercent 0", policy: od(ptr.To[int32](1), ptr.To[int32](100), ptr.To[int32](0)), wantErr: []string{
			`DestinationPolicy.mesh.capstan.dev "p" is invalid`,
			"spec.trafficPolicy.outlierDetection.maxEjectionPercent: Invalid value: 100: with minHealthPercent 0 this can eject every endpoint",
			`annotate the policy capstan.dev/allow-aggressive-ejection: "true"`,
		}},
		{name: "in a subset", policy: od(ptr.To[int32](5), nil, nil), subset: od(ptr.To[int32](2), ptr.To[int32](100), ptr.To[int32](0)), wantErr: []string{
			"spec.subsets[1].trafficPolicy.outlierDetection.maxEjectionPercent: Invalid value: 100",
		}},
		{name: "annotated", annotations: allow, subset: od(ptr.To[int32](2), ptr.To[int32](100), ptr.To[int32](0)), wantWarn: []string{
			`spec.subsets[1].trafficPolicy.outlierDetection.maxEjectionPercent: 100 can eject the whole pool; admitted because of capstan.dev/allow-aggressive-ejection: "true"`,
		}},
		{name: "update keeping a stored aggressive value", old: od(ptr.To[int32](2), ptr.To[int32](100), ptr.To[int32](0)),
			subset: od(ptr.To[int32](1), ptr.To[int32](100), ptr.To[int32](0)), wantWarn: []string{
				"spec.subsets[1].trafficPolicy.outlierDetection.maxEjectionPercent: 100 can eject the whole pool; admitted because it is unchanged",
			}},
		{name: "update making it aggressive", old: od(nil, nil, nil), subset: od(ptr.To[int32](1), ptr.To[int32](100), ptr.To[int32](0)),
			wantErr: []string{"maxEjectionPercent: Invalid value: 100"}},
		{name: "annotated false", annotations: map[string]string{meshv1alpha1.AnnotationAllowAggressiveEjection: "false"},
			policy: od(nil, ptr.To[int32](100), ptr.To[int32](0)), wantErr: []string{"maxEjectionPercent"}},
		{name: "unknown annotation warned, aggressive refused", annotations: map[string]string{"capstan.dev/allow-aggressive-ejections": "true"},
			policy: od(nil, ptr.To[int32](100), ptr.To[int32](0)), wantErr: []string{"maxEjectionPercent"},
			wantWarn: []string{"capstan.dev/allow-aggressive-ejections]: unknown Capstan annotation"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dp := &meshv1alpha1.DestinationPolicy{
				ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "shop", Annotations: tc.annotations},
				Spec: meshv1alpha1.DestinationPolicySpec{Host: "reviews", TrafficPolicy: tc.policy, Subsets: []meshv1alpha1.Subset{
					{Name: "v1", Labels: map[string]string{"version": "v1"}},
					{Name: "v2", Labels: map[string]string{"version": "v2"}, TrafficPolicy: tc.subset},
				}},
			}
			in := dp.DeepCopy()
			var old *meshv1alpha1.DestinationPolicy
			if tc.old != nil {
				old = dp.DeepCopy()
				old.Spec.Subsets[1].TrafficPolicy = tc.old
			}
			warnings, err := DecideDestinationPolicy(old, dp)
			if len(tc.wantErr) == 0 && err != nil {
				t.Fatalf("error %v, want none", err)
			}
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("no error, want one containing %q", tc.wantErr)
				}
				if !apierrors.IsInvalid(err) {
					t.Errorf("error %v is not an Invalid status error", err)
				}
				for _, want := range tc.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not contain %q", err, want)
					}
				}
			}
			if len(warnings) != len(tc.wantWarn) {
				t.Fatalf("warnings %q, want %d like %q", warnings, len(tc.wantWarn), tc.wantWarn)
			}
			for i := range warnings {
				if !strings.Contains(warnings[i], tc.wantWarn[i]) {
					t.Errorf("warning %d = %q, want it to contain %q", i, warnings[i], tc.wantWarn[i])
				}
			}
			if !equalDP(in, dp) {
				t.Error("DecideDestinationPolicy modified its input")
			}
		})
	}
}

func equalDP(a, b *meshv1alpha1.DestinationPolicy) bool {
	return equality.Semantic.DeepEqual(a, b)
}

func dp(ns, name, host string, age time.Duration, subsets ...string) meshv1alpha1.DestinationPolicy {
	p := meshv1alpha1.DestinationPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
			CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(-age))},
		Spec: meshv1alpha1.DestinationPolicySpec{Host: host},
	}
	for _, s := range subsets {
		p.Spec.Subsets = append(p.Spec.Subsets, meshv1alpha1.Subset{Name: s, Labels: map[string]string{"v": s}})
	}
	return p
}

func TestMissingSubsets(t *testing.T) {
	route := func(dests ...meshv1alpha1.Destination) *meshv1alpha1.MeshRoute {
		return &meshv1alpha1.MeshRoute{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "r"},
			Spec:       meshv1alpha1.MeshRouteSpec{Hosts: []string{"reviews"}, HTTP: []meshv1alpha1.HTTPRule{{Route: dests}}},
		}
	}
	d := func(host, subset string) meshv1alpha1.Destination {
		return meshv1alpha1.Destination{Host: host, Subset: subset}
	}
	for _, tc := range []struct {
		name     string
		route    *meshv1alpha1.MeshRoute
		policies []meshv1alpha1.DestinationPolicy
		want     []string
	}{
		{name: "no subsets named", route: route(d("reviews", ""))},
		{name: "defined, short names in the same namespace", route: route(d("reviews", "v1")),
			policies: []meshv1alpha1.DestinationPolicy{dp("shop", "p", "reviews", 0, "v1", "v2")}},
		{name: "defined, FQDN in the route, short name in the policy",
			route:    route(d("reviews.shop.svc.cluster.local", "v2"), d("reviews.shop", "v1")),
			policies: []meshv1alpha1.DestinationPolicy{dp("shop", "p", "reviews", 0, "v1", "v2")}},
		{name: "defined by a policy elsewhere naming the FQDN", route: route(d("reviews", "v1")),
			policies: []meshv1alpha1.DestinationPolicy{dp("ops", "p", "reviews.shop.svc.cluster.local", 0, "v1")}},
		{name: "a policy for the same short name in another namespace does not count", route: route(d("reviews", "v1")),
			policies: []meshv1alpha1.DestinationPolicy{dp("other", "p", "reviews", 0, "v1")},
			want:     []string{`spec.http[0].route[0].subset: subset "v1" of host reviews is not defined: no DestinationPolicy configures reviews.shop.svc.cluster.local`}},
		{name: "absent from the policy", route: route(d("reviews", "v1"), d("reviews", "v3")),
			policies: []meshv1alpha1.DestinationPolicy{dp("shop", "p", "reviews", 0, "v1", "v2")},
			want:     []string{`spec.http[0].route[1].subset: subset "v3" of host reviews is not defined by DestinationPolicy shop/p (subsets: v1, v2)`}},
		{name: "the oldest policy applies", route: route(d("reviews", "v3")),
			policies: []meshv1alpha1.DestinationPolicy{dp("shop", "new", "reviews", 0, "v3"), dp("shop", "old", "reviews", time.Hour, "v1")},
			want:     []string{`not defined by DestinationPolicy shop/old (subsets: v1)`}},
		{name: "mirror", route: func() *meshv1alpha1.MeshRoute {
			r := route(d("reviews", ""))
			r.Spec.HTTP[0].Mirror = &meshv1alpha1.Mirror{Host: "ratings", Subset: "canary"}
			return r
		}(), policies: []meshv1alpha1.DestinationPolicy{dp("shop", "p", "ratings", 0, "stable")},
			want: []string{`spec.http[0].mirror.subset: subset "canary" of host ratings is not defined by DestinationPolicy shop/p (subsets: stable)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := MissingSubsets(tc.route, tc.policies)
			if len(got) != len(tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tc.want[i]) {
					t.Errorf("warning %d = %q, want it to contain %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// TestKeptProblemWarningIsShort: an update keeping a stored problem with a
// long message (a 1000-byte regular expression) is admitted with one warning
// of at most 256 bytes that names the field.
func TestKeptProblemWarningIsShort(t *testing.T) {
	mr := &meshv1alpha1.MeshRoute{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "shop"}, Spec: meshv1alpha1.MeshRouteSpec{
		Hosts: []string{"reviews"}, HTTP: []meshv1alpha1.HTTPRule{{Route: []meshv1alpha1.Destination{{Host: "reviews"}},
			Match: []meshv1alpha1.HTTPMatch{{Path: &meshv1alpha1.PathMatch{Type: meshv1alpha1.MatchRegularExpression, Value: "/(" + strings.Repeat("a", 1000)}}}}},
	}}
	v := &MeshRouteValidator{}
	if _, err := v.ValidateCreate(context.Background(), mr); err == nil {
		t.Fatal("a regex Envoy cannot parse was admitted")
	}
	warnings, err := v.ValidateUpdate(context.Background(), mr, mr.DeepCopy())
	if err != nil {
		t.Fatalf("an update keeping the stored problem: %v", err)
	}
	if len(warnings) != 1 || len(warnings[0]) > 256 || !strings.HasPrefix(warnings[0], "spec.http[0].match[0].path.value: admitted because it is unchanged") {
		t.Errorf("warnings %q, want one short warning naming the field", warnings)
	}
}
