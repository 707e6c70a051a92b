package integration

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// TestMeshDefaults creates a Mesh with an empty spec from Go and checks
// every default the API server fills in.
func TestMeshDefaults(t *testing.T) {
	m := &meshv1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: meshv1alpha1.MeshName}}
	createMesh(t, m)
	got := &meshv1alpha1.Mesh{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(m), got); err != nil {
		t.Fatal(err)
	}
	want := meshv1alpha1.MeshSpec{
		TrustDomain: "cluster.local",
		MTLS:        meshv1alpha1.MeshMTLS{Mode: meshv1alpha1.MTLSPermissive},
		Certificates: meshv1alpha1.Certificates{
			Provider:         meshv1alpha1.ProviderBuiltIn,
			WorkloadCertTTL:  metav1.Duration{Duration: 24 * time.Hour},
			RotationFraction: 0.5,
		},
		Proxy:     meshv1alpha1.ProxyConfig{Image: meshv1alpha1.DefaultProxyImage, LogLevel: "warning"},
		Injection: meshv1alpha1.Injection{NativeSidecar: ptr.To(true), RestartUninjected: false},
		Telemetry: meshv1alpha1.Telemetry{
			AccessLog: meshv1alpha1.AccessLog{Enabled: false, Format: "Text"},
			Tracing:   meshv1alpha1.Tracing{SamplingPercent: 1},
		},
	}
	if diff := cmp.Diff(want, got.Spec); diff != "" {
		t.Errorf("Mesh defaults (-want +got):\n%s", diff)
	}
}

// TestMeshDefaultsFromYAML checks the defaults of a Mesh written without a spec,
// as a user applying YAML would.
func TestMeshDefaultsFromYAML(t *testing.T) {
	u := fromYAML(t, "Mesh", "", meshv1alpha1.MeshName, "{}")
	delete(u.Object, "spec")
	if err := env.Client.Create(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteMesh(t, meshv1alpha1.MeshName) })
	got := &meshv1alpha1.Mesh{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Name: meshv1alpha1.MeshName}, got); err != nil {
		t.Fatal(err)
	}
	s := got.Spec
	checks := []struct {
		field string
		got   any
		want  any
	}{
		{"trustDomain", s.TrustDomain, "cluster.local"},
		{"mtls.mode", s.MTLS.Mode, meshv1alpha1.MTLSPermissive},
		{"certificates.provider", s.Certificates.Provider, meshv1alpha1.ProviderBuiltIn},
		{"certificates.workloadCertTTL", s.Certificates.WorkloadCertTTL.Duration, 24 * time.Hour},
		{"certificates.rotationFraction", s.Certificates.RotationFraction, 0.5},
		{"proxy.image", s.Proxy.Image, meshv1alpha1.DefaultProxyImage},
		{"proxy.logLevel", s.Proxy.LogLevel, "warning"},
		{"injection.nativeSidecar", s.Injection.NativeSidecar, ptr.To(true)},
		{"injection.restartUninjected", s.Injection.RestartUninjected, false},
	}
	for _, c := range checks {
		if diff := cmp.Diff(c.want, c.got); diff != "" {
			t.Errorf("spec.%s (-want +got):\n%s", c.field, diff)
		}
	}
}

// TestNamespacedDefaults checks the defaults of the namespaced kinds.
func TestNamespacedDefaults(t *testing.T) {
	t.Parallel()
	ns := env.NewNamespace(t)
	ctx := context.Background()

	dp := fromYAML(t, "DestinationPolicy", ns, "reviews", "host: reviews\ntrafficPolicy: {outlierDetection: {}}")
	if err := env.Client.Create(ctx, dp); err != nil {
		t.Fatal(err)
	}
	gotDP := &meshv1alpha1.DestinationPolicy{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "reviews"}, gotDP); err != nil {
		t.Fatal(err)
	}
	wantOD := &meshv1alpha1.OutlierDetection{
		Consecutive5xxErrors: ptr.To[int32](5),
		Interval:             &metav1.Duration{Duration: 10 * time.Second},
		BaseEjectionTime:     &metav1.Duration{Duration: 30 * time.Second},
		MaxEjectionPercent:   ptr.To[int32](50),
		MinHealthPercent:     ptr.To[int32](50),
	}
	if diff := cmp.Diff(wantOD, gotDP.Spec.TrafficPolicy.OutlierDetection); diff != "" {
		t.Errorf("outlierDetection defaults (-want +got):\n%s", diff)
	}

	pa := fromYAML(t, "PeerAuthentication", ns, "default", "{}")
	if err := env.Client.Create(ctx, pa); err != nil {
		t.Fatal(err)
	}
	gotPA := &meshv1alpha1.PeerAuthentication{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "default"}, gotPA); err != nil {
		t.Fatal(err)
	}
	if gotPA.Spec.MTLS.Mode != meshv1alpha1.PeerMTLSUnset {
		t.Errorf("PeerAuthentication spec.mtls.mode = %q, want UNSET", gotPA.Spec.MTLS.Mode)
	}

	mr := fromYAML(t, "MeshRoute", ns, "reviews", `
hosts: [reviews]
http:
- match: [{path: {value: /old}}]
  redirect: {uri: /new}
- match: [{headers: [{name: x-canary, value: "true"}]}]
  route: [{host: reviews, subset: v2}]
  retries: {attempts: 2, budget: {}}
  fault: {delay: {fixedDelay: 1s}, abort: {httpStatus: 503}}
  mirror: {host: reviews-shadow}
`)
	if err := env.Client.Create(ctx, mr); err != nil {
		t.Fatal(err)
	}
	gotMR := &meshv1alpha1.MeshRoute{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "reviews"}, gotMR); err != nil {
		t.Fatal(err)
	}
	redirect, canary := gotMR.Spec.HTTP[0], gotMR.Spec.HTTP[1]
	checks := []struct {
		field string
		got   any
		want  any
	}{
		{"http[0].redirect.code", redirect.Redirect.Code, int32(301)},
		{"http[0].match[0].path.type", redirect.Match[0].Path.Type, meshv1alpha1.MatchPrefix},
		{"http[1].match[0].headers[0].type", canary.Match[0].Headers[0].Type, meshv1alpha1.MatchExact},
		{"http[1].retries.budget", *canary.Retries.Budget, meshv1alpha1.RetryBudget{Percent: 20, MinRetryConcurrency: 3}},
		{"http[1].fault.delay.percent", canary.Fault.Delay.Percent, int32(100)},
		{"http[1].fault.abort.percent", canary.Fault.Abort.Percent, int32(100)},
		{"http[1].mirror.percent", canary.Mirror.Percent, int32(100)},
	}
	for _, c := range checks {
		if diff := cmp.Diff(c.want, c.got); diff != "" {
			t.Errorf("spec.%s (-want +got):\n%s", c.field, diff)
		}
	}
}
