package inject

import (
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

func optOutPod(ann map[string]string, ports ...int32) *corev1.Pod {
	pod := &corev1.Pod{}
	pod.Annotations = ann
	c := corev1.Container{Name: "app"}
	for _, p := range ports {
		c.Ports = append(c.Ports, corev1.ContainerPort{ContainerPort: p})
	}
	pod.Spec.Containers = []corev1.Container{c}
	return pod
}

func TestOptOuts(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	withSidecarPort := optOutPod(map[string]string{meshv1alpha1.AnnotationExcludeInboundPorts: "8080"}, 8080)
	withSidecarPort.Spec.InitContainers = []corev1.Container{{Name: "log", RestartPolicy: &always,
		Ports: []corev1.ContainerPort{{ContainerPort: 9000}}}}
	udpOnly := optOutPod(map[string]string{meshv1alpha1.AnnotationExcludeInboundPorts: "8080"}, 8080)
	udpOnly.Spec.Containers[0].Ports = append(udpOnly.Spec.Containers[0].Ports,
		corev1.ContainerPort{ContainerPort: 5353, Protocol: corev1.ProtocolUDP})
	cases := []struct {
		name string
		pod  *corev1.Pod
		want []string // substrings, one per opt-out, in order
	}{
		{"nothing excluded", optOutPod(nil, 8080), nil},
		{"some CIDRs", optOutPod(map[string]string{meshv1alpha1.AnnotationExcludeOutboundIPRanges: "10.0.0.0/8,192.168.0.0/16"}), nil},
		{"all IPv4", optOutPod(map[string]string{meshv1alpha1.AnnotationExcludeOutboundIPRanges: "0.0.0.0/0"}),
			[]string{`capstan.dev/exclude-outbound-ip-ranges "0.0.0.0/0" excludes every IPv4 destination`}},
		{"all IPv4 in two halves", optOutPod(map[string]string{meshv1alpha1.AnnotationExcludeOutboundIPRanges: "128.0.0.0/1, 0.0.0.0/1"}),
			[]string{"every IPv4 destination"}},
		{"all IPv4 in uneven pieces", optOutPod(map[string]string{meshv1alpha1.AnnotationExcludeOutboundIPRanges: "0.0.0.0/1,128.0.0.0/2,192.0.0.0/3,224.0.0.0/3"}),
			[]string{"every IPv4 destination"}},
		{"IPv4 with a hole", optOutPod(map[string]string{meshv1alpha1.AnnotationExcludeOutboundIPRanges: "0.0.0.0/1,128.0.0.0/2,192.0.0.0/3,240.0.0.0/4"}), nil},
		{"all IPv6 only", optOutPod(map[string]string{meshv1alpha1.AnnotationExcludeOutboundIPRanges: "::/1,8000::/1"}),
			[]string{"every IPv6 destination"}},
		{"both families", optOutPod(map[string]string{meshv1alpha1.AnnotationExcludeOutboundIPRanges: "0.0.0.0/0,::/0"}),
			[]string{"every IPv4 destination", "every IPv6 destination"}},
		{"invalid CIDRs count for nothing", optOutPod(map[string]string{meshv1alpha1.AnnotationExcludeOutboundIPRanges: "0.0.0.0/0,nope"}), nil},
		{"every declared port", optOutPod(map[string]string{meshv1alpha1.AnnotationExcludeInboundPorts: "9090, 8080"}, 8080, 9090),
			[]string{`excludes every port the pod's containers declare (8080,9090)`}},
		{"one declared port of two", optOutPod(map[string]string{meshv1alpha1.AnnotationExcludeInboundPorts: "8080"}, 8080, 9090), nil},
		{"no declared ports", optOutPod(map[string]string{meshv1alpha1.AnnotationExcludeInboundPorts: "8080"}), nil},
		{"a native sidecar's port too", withSidecarPort, nil},
		{"UDP ports are not captured anyway", udpOnly, []string{"(8080)"}},
		{"every outbound port", optOutPod(map[string]string{meshv1alpha1.AnnotationExcludeOutboundPorts: allPorts()}),
			[]string{"excludes every destination port"}},
		{"every inbound port", optOutPod(map[string]string{meshv1alpha1.AnnotationExcludeInboundPorts: allPorts()}),
			[]string{`"1,2,3,`, "excludes every port from capture"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := OptOuts(c.pod)
			if c.name == "every inbound port" {
				if len(got) != 1 || !strings.Contains(got[0], c.want[0]) || !strings.Contains(got[0], c.want[1]) || len(got[0]) > 250 {
					t.Fatalf("got %q", got)
				}
				return
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %d opt-outs %q, want %d", len(got), got, len(c.want))
			}
			for i := range got {
				if !strings.Contains(got[i], c.want[i]) {
					t.Errorf("opt-out %d: %q does not contain %q", i, got[i], c.want[i])
				}
			}
		})
	}
	if OptOuts(nil) != nil {
		t.Error("OptOuts(nil) is not nil")
	}
}

func allPorts() string {
	var b strings.Builder
	for p := 1; p <= maxPort; p++ {
		if p > 1 {
			b.WriteByte(',')
		}
		b.WriteString(itoa(int64(p)))
	}
	return b.String()
}

func TestCoversEndsOnManyPrefixes(t *testing.T) {
	// 256 /8s cover IPv4; 255 of them do not.
	var all []netip.Prefix
	for i := range 256 {
		all = append(all, netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(i), 0, 0, 0}), 8))
	}
	if !covers(all, allIPv4) {
		t.Error("256 /8s do not cover IPv4")
	}
	if covers(all[1:], allIPv4) {
		t.Error("255 /8s cover IPv4")
	}
	if covers(all, allIPv6) {
		t.Error("IPv4 prefixes cover IPv6")
	}
}

func TestIsInjectedNeedsWhatStatusNames(t *testing.T) {
	c := readCase(t, "testdata/plain.yaml")
	injected, err := Inject(c.pod, c.config())
	if err != nil {
		t.Fatal(err)
	}
	if !IsInjected(injected) {
		t.Fatal("an injected pod is not IsInjected")
	}
	for name, strip := range map[string]func(p *corev1.Pod){
		"no capstan-init": func(p *corev1.Pod) { p.Spec.InitContainers = p.Spec.InitContainers[1:] },
		"no proxy":        func(p *corev1.Pod) { p.Spec.InitContainers = p.Spec.InitContainers[:1] },
		"no volumes":      func(p *corev1.Pod) { p.Spec.Volumes = nil },
		"no status":       func(p *corev1.Pod) { delete(p.Annotations, meshv1alpha1.AnnotationStatus) },
		"bad status":      func(p *corev1.Pod) { p.Annotations[meshv1alpha1.AnnotationStatus] = "{" },
	} {
		p := injected.DeepCopy()
		strip(p)
		if IsInjected(p) {
			t.Errorf("%s: IsInjected is true", name)
		}
		if _, err := Inject(p, c.config()); err == nil {
			t.Errorf("%s: Inject accepted the pod", name)
		}
	}
}
