package inject

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// TestInjectTwiceEqualsOnce checks, for every golden case Inject accepts,
// that injecting the injected pod changes nothing.
func TestInjectTwiceEqualsOnce(t *testing.T) {
	for _, c := range goldenCases(t) {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.config()
			once, err := Inject(c.pod, cfg)
			if err != nil {
				t.Skipf("Inject refuses this case: %v", err)
			}
			twice, err := Inject(once, cfg)
			if err != nil {
				t.Fatalf("second Inject: %v", err)
			}
			if diff := cmp.Diff(once, twice); diff != "" {
				t.Errorf("Inject(Inject(p)) != Inject(p) (-once +twice):\n%s", diff)
			}
			if ok, reason := ShouldInject(once, c.ns, cfg); ok {
				t.Errorf("ShouldInject(injected pod) = true (%s)", reason)
			}
		})
	}
}

// TestInjectDoesNotMutate checks that no case's input changes, whether
// Inject succeeds or fails.
func TestInjectDoesNotMutate(t *testing.T) {
	for _, c := range goldenCases(t) {
		t.Run(c.name, func(t *testing.T) {
			before := c.pod.DeepCopy()
			out, _ := Inject(c.pod, c.config())
			if diff := cmp.Diff(before, c.pod); diff != "" {
				t.Fatalf("Inject mutated its input (-before +after):\n%s", diff)
			}
			if out != nil && out == c.pod {
				t.Fatal("Inject returned its input, not a copy")
			}
		})
	}
}

// TestInjectConcurrent shares one pod and one config between goroutines; run with -race.
func TestInjectConcurrent(t *testing.T) {
	c := readCase(t, "testdata/several_containers.yaml")
	cfg := c.config()
	want, err := Inject(c.pod, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			got, err := Inject(c.pod, cfg)
			if err != nil || !equality.Semantic.DeepEqual(got, want) {
				t.Errorf("concurrent Inject differs: %v", err)
			}
		})
	}
	wg.Wait()
}

func TestInjectErrors(t *testing.T) {
	cfg := ConfigFromMesh(nil, Options{})
	pod := func(mutate func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
		p.Namespace = "shop"
		mutate(p)
		return p
	}
	for name, tc := range map[string]struct {
		pod    *corev1.Pod
		cfg    Config
		want   string
		podErr bool
	}{
		"nil pod": {nil, cfg, "no pod", false},
		"no containers": {pod(func(p *corev1.Pod) { p.Spec.Containers = nil }), cfg,
			"pod has no containers", true},
		"host network": {pod(func(p *corev1.Pod) { p.Spec.HostNetwork = true }), cfg,
			"pod uses the host network: its capture rules would apply to the node", true},
		"init name taken": {pod(func(p *corev1.Pod) { p.Spec.InitContainers = []corev1.Container{{Name: InitContainerName}} }), cfg,
			"pod already has a container named capstan-init", true},
		"bad config": {pod(func(*corev1.Pod) {}), func() Config { c := cfg; c.ProxyLogLevel = "loud"; return c }(),
			`injector configuration: proxy log level "loud" is not one of trace, debug, info, warning, error, critical, off`, false},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Inject(tc.pod, tc.cfg)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Inject error = %v, want %q", err, tc.want)
			}
			var pe *PodError
			if errors.As(err, &pe) != tc.podErr {
				t.Errorf("errors.As(*PodError) = %v, want %v", !tc.podErr, tc.podErr)
			}
		})
	}
}

func TestAnnotationErrors(t *testing.T) {
	for value, want := range map[string]string{
		"80x":           `annotation capstan.dev/exclude-inbound-ports: "80x" is not a port number`,
		"0":             `annotation capstan.dev/exclude-inbound-ports: "0" is not a port number`,
		"65536":         `annotation capstan.dev/exclude-inbound-ports: "65536" is not a port number`,
		"-1":            `annotation capstan.dev/exclude-inbound-ports: "-1" is not a port number`,
		"80, 443,,8080": "",
	} {
		_, err := parsePorts(map[string]string{meshv1alpha1.AnnotationExcludeInboundPorts: value}, meshv1alpha1.AnnotationExcludeInboundPorts)
		if got := errString(err); got != want {
			t.Errorf("parsePorts(%q) error = %q, want %q", value, got, want)
		}
	}
	for value, want := range map[string]string{
		"10.0.0.0/8":       "",
		"fd00::1":          "",
		"10.0.0.1/8":       `annotation a: "10.0.0.1/8" is not a CIDR: host bits are set (did you mean 10.0.0.0/8?)`,
		"10.0.0.0/33":      `annotation a: "10.0.0.0/33" is not a CIDR`,
		"fe80::1%eth0":     `annotation a: "fe80::1%eth0" is not a CIDR`,
		"example.com":      `annotation a: "example.com" is not a CIDR`,
		"10.0.0.0/8,1.2.3": `annotation a: "1.2.3" is not a CIDR`,
	} {
		_, err := parseCIDRs(map[string]string{"a": value}, "a")
		if got := errString(err); got != want {
			t.Errorf("parseCIDRs(%q) error = %q, want %q", value, got, want)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestShouldInject(t *testing.T) {
	cfg := ConfigFromMesh(nil, Options{})
	enabled := &corev1.Namespace{}
	enabled.Name = "shop"
	enabled.Labels = map[string]string{meshv1alpha1.LabelInject: meshv1alpha1.InjectEnabled}
	pod := &corev1.Pod{}
	pod.Namespace = "shop"
	pod.Labels = map[string]string{meshv1alpha1.LabelInject: "yes"}
	ok, reason := ShouldInject(pod, enabled, cfg)
	if !ok || !strings.Contains(reason, `pod label capstan.dev/inject="yes" ignored`) {
		t.Errorf("unknown pod label value: got %v, %q", ok, reason)
	}
	pod.Labels = nil
	if ok, reason := ShouldInject(pod, nil, cfg); ok || reason != "namespace shop does not have label capstan.dev/inject=enabled" {
		t.Errorf("nil namespace: got %v, %q", ok, reason)
	}
	if ok, _ := ShouldInject(nil, enabled, cfg); ok {
		t.Error("nil pod: got true")
	}
}
