package inject

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

func TestConfigFromMeshDefaults(t *testing.T) {
	got := ConfigFromMesh(nil, Options{})
	want := Config{
		Version:           "dev",
		OperatorNamespace: "capstan-system",
		XDSAddress:        "capstan-xds.capstan-system.svc:15012",
		TokenExchangeURL:  "https://capstan-xds.capstan-system.svc/v1/token",
		TrustDomain:       "cluster.local",
		InitImage:         "ghcr.io/capstanmesh/capstan-init:dev",
		ProxyImage:        meshv1alpha1.DefaultProxyImage,
		ProxyResources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi"),
		}},
		ProxyLogLevel: "warning",
		NativeSidecar: true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ConfigFromMesh(nil) (-want +got):\n%s", diff)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("default config invalid: %v", err)
	}
	ns := ConfigFromMesh(&meshv1alpha1.Mesh{}, Options{OperatorNamespace: "mesh", Version: "v1.2.3"})
	if ns.XDSAddress != "capstan-xds.mesh.svc:15012" || ns.InitImage != "ghcr.io/capstanmesh/capstan-init:v1.2.3" {
		t.Errorf("defaults do not follow the options: %+v", ns)
	}
}

// TestConfigFromMeshDoesNotAlias checks that the Config owns its resources.
func TestConfigFromMeshDoesNotAlias(t *testing.T) {
	mesh := &meshv1alpha1.Mesh{}
	mesh.Spec.Proxy.Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
	cfg := ConfigFromMesh(mesh, Options{})
	cfg.ProxyResources.Limits[corev1.ResourceCPU] = resource.MustParse("2")
	if q := mesh.Spec.Proxy.Resources.Limits[corev1.ResourceCPU]; q.String() != "1" {
		t.Errorf("Config shares the Mesh's resource map: limit now %s", q.String())
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := ConfigFromMesh(nil, Options{})
	cfg.Version = ""
	cfg.XDSAddress = "capstan-xds"
	cfg.TokenExchangeURL = "/v1/token"
	cfg.ProxyConcurrency = 65
	want := `proxy concurrency "65" is outside 0-64` + "\n" +
		`token exchange URL "/v1/token" is not an absolute http(s) URL` + "\n" +
		`version "" must be non-empty, without spaces or '$'` + "\n" +
		`xDS address "capstan-xds" is not host:port`
	if err := cfg.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate() = %v, want\n%s", err, want)
	}
}

func TestConcurrency(t *testing.T) {
	limit := func(cpu string) corev1.ResourceRequirements {
		return corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}
	}
	for _, tc := range []struct {
		fixed int32
		res   corev1.ResourceRequirements
		want  int32
	}{
		{0, corev1.ResourceRequirements{}, 2},
		{0, limit("100m"), 1},
		{0, limit("1"), 1},
		{0, limit("1001m"), 2},
		{0, limit("3500m"), 4},
		{0, limit("200"), 64},
		{3, limit("8"), 3},
	} {
		if got := concurrency(tc.fixed, tc.res); got != tc.want {
			t.Errorf("concurrency(%d, %v) = %d, want %d", tc.fixed, tc.res.Limits, got, tc.want)
		}
	}
}

func TestAnnotationsRoundTrip(t *testing.T) {
	c := readCase(t, "testdata/probe_http_liveness.yaml")
	out, err := Inject(c.pod, c.config())
	if err != nil {
		t.Fatal(err)
	}
	st, ok, err := ParseStatus(out)
	if err != nil || !ok {
		t.Fatalf("ParseStatus: %v, %v", ok, err)
	}
	if want := statusFor(c.config()); !cmp.Equal(st, want) {
		t.Errorf("status %+v, want %+v", st, want)
	}
	probes, err := ParseOriginalProbes(out)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c.pod.Spec.Containers[0].LivenessProbe, probes[AppHealthPath("app", ProbeLiveness)]); diff != "" {
		t.Errorf("original probe (-want +got):\n%s", diff)
	}
	if _, ok, _ := ParseStatus(c.pod); ok {
		t.Error("un-injected pod has a status")
	}
}
