package inject

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/capstanmesh/capstan/api/annotations"
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
	if ns.XDSAddress != "capstan-xds.mesh.svc:15012" || ns.TokenExchangeURL != "https://capstan-xds.mesh.svc/v1/token" ||
		ns.InitImage != "ghcr.io/capstanmesh/capstan-init:v1.2.3" {
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

// TestTokenExchangeURLHasNoPort: Envoy's gRPC STS client verifies the
// exchange's certificate against host:port when the URL names a port (found
// with the real Envoy, test/xdsauth TestEnvoySidecarACKsItsConfig), so the
// default URL leaves the port out and Validate refuses an https URL with one.
func TestTokenExchangeURLHasNoPort(t *testing.T) {
	for xds, want := range map[string]string{
		"capstan-xds.capstan-system.svc:15012": "https://capstan-xds.capstan-system.svc/v1/token",
		"10.0.0.1:15012":                       "https://10.0.0.1/v1/token",
		"[fd00::1]:15012":                      "https://[fd00::1]/v1/token",
	} {
		cfg := ConfigFromMesh(nil, Options{XDSAddress: xds})
		if cfg.TokenExchangeURL != want {
			t.Errorf("XDSAddress %s: TokenExchangeURL %s, want %s", xds, cfg.TokenExchangeURL, want)
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("XDSAddress %s: %v", xds, err)
		}
	}
	for u, ok := range map[string]bool{
		"https://capstan-xds.capstan-system.svc:15012/v1/token": false,
		"https://capstan-xds.capstan-system.svc:443/v1/token":   false,
		"http://127.0.0.1:8080/v1/token":                        true,
	} {
		cfg := ConfigFromMesh(nil, Options{TokenExchangeURL: u})
		if err := cfg.Validate(); (err == nil) != ok {
			t.Errorf("TokenExchangeURL %s: Validate() = %v, want ok=%v", u, err, ok)
		}
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
	probes, err := annotations.ParseOriginalProbes(out)
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
