package inject

import (
	"slices"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/protobuf/encoding/protojson"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/xds/ir"
	"github.com/capstanmesh/capstan/xds/server"
)

// expand does what the kubelet does to container args: $(NAME) becomes the
// variable's value, $$ becomes $, and an unknown $(NAME) stays as it is.
func expand(s string, env map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch next := s[i+1]; {
		case next == '$':
			b.WriteByte('$')
			i++
		case next == '(' && strings.IndexByte(s[i:], ')') > 0:
			end := i + strings.IndexByte(s[i:], ')')
			name := s[i+2 : end]
			if v, ok := env[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : end+1])
			}
			i = end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// testFingerprints is a root CA ConfigMap's fingerprint list (two roots).
const testFingerprints = "0a7c1f9a8e5b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5," +
	"f00d1f9a8e5b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5"

// proxyOf returns the injected proxy container of a pod.
func proxyOf(t *testing.T, pod *corev1.Pod) corev1.Container {
	t.Helper()
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		if i := slices.IndexFunc(cs, func(c corev1.Container) bool { return c.Name == meshv1alpha1.ProxyContainerName }); i >= 0 {
			return cs[i]
		}
	}
	t.Fatal("no proxy container")
	return corev1.Container{}
}

// TestBootstrapIsValidEnvoyConfig expands the proxy's args as the kubelet
// would, parses the bootstrap strictly as Envoy's v3 Bootstrap, validates it
// with Envoy's own rules, and checks the node ID the xDS server will parse.
func TestBootstrapIsValidEnvoyConfig(t *testing.T) {
	for _, c := range goldenCases(t) {
		cfg := c.config()
		if ok, _ := ShouldInject(c.pod, c.ns, cfg); !ok {
			continue
		}
		out, err := Inject(c.pod, cfg)
		if err != nil {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			proxy := proxyOf(t, out)
			env := map[string]string{
				EnvPodName: "web-0", EnvPodNamespace: "shop", EnvPodIP: "10.1.2.3", EnvServiceAccount: "web",
				EnvRootFingerprints: testFingerprints,
			}
			for _, e := range proxy.Env {
				if e.ValueFrom == nil {
					env[e.Name] = e.Value
				} else if _, ok := env[e.Name]; !ok {
					t.Errorf("env %s has no test value", e.Name)
				}
			}
			i := slices.Index(proxy.Args, "--config-yaml")
			if i < 0 || i+1 >= len(proxy.Args) {
				t.Fatalf("no --config-yaml in %v", proxy.Args)
			}
			raw := expand(proxy.Args[i+1], env)
			bs := &bootstrapv3.Bootstrap{}
			if err := protojson.Unmarshal([]byte(raw), bs); err != nil {
				t.Fatalf("bootstrap is not an Envoy v3 Bootstrap: %v\n%s", err, raw)
			}
			if err := bs.ValidateAll(); err != nil {
				t.Fatalf("bootstrap fails Envoy's validation: %v", err)
			}
			id := bs.GetNode().GetId()
			if want := ir.SidecarNodeID("10.1.2.3", "web-0", "shop"); id != want {
				t.Errorf("node ID %q, want %q", id, want)
			}
			n, err := server.ParseNodeID(id)
			if err != nil || n.Type != server.NodeSidecar || n.Pod != "web-0" || n.Namespace != "shop" {
				t.Errorf("ParseNodeID(%q) = %+v, %v", id, n, err)
			}
			if got := bs.GetNode().GetMetadata().GetFields()[NodeMetaRoots].GetStringValue(); got != testFingerprints {
				t.Errorf("node metadata %s = %q, want the fingerprints from the ConfigMap %q", NodeMetaRoots, got, testFingerprints)
			}
			ads := bs.GetDynamicResources().GetAdsConfig()
			if ads.GetApiType().String() != "DELTA_GRPC" || ads.GetGrpcServices()[0].GetGoogleGrpc().GetTargetUri() != cfg.XDSAddress {
				t.Errorf("ADS config %v", ads)
			}
		})
	}
}

// TestBootstrapEscapesDollar keeps configuration text away from Kubernetes' $(VAR) expansion.
func TestBootstrapEscapesDollar(t *testing.T) {
	cfg := ConfigFromMesh(nil, Options{})
	cfg.TrustDomain = "td$(POD_NAME)"
	got := expand(bootstrapJSON(cfg, "w$(POD_NAME)"), map[string]string{EnvPodName: "x"})
	if !strings.Contains(got, `"td$(POD_NAME)"`) || !strings.Contains(got, `"fixed_value":"w$(POD_NAME)"`) {
		t.Errorf("expanded bootstrap lost the literal: %s", got)
	}
}

// TestWorkloadName: the workload label of a pod's metrics, by the order
// WorkloadName documents.
func TestWorkloadName(t *testing.T) {
	yes := true
	rs := []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-7d9f8", Controller: &yes}}
	for _, tc := range []struct {
		name string
		pod  corev1.Pod
		want string
	}{
		{"app.kubernetes.io/name first", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: map[string]string{"app.kubernetes.io/name": "a", "app": "b"}}}, "a"},
		{"app label", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: map[string]string{"app": "b"}}}, "b"},
		{"Deployment of a ReplicaSet", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-7d9f8-x", OwnerReferences: rs, Labels: map[string]string{"pod-template-hash": "7d9f8"}}}, "web"},
		{"other controller", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "db-0", OwnerReferences: []metav1.OwnerReference{{Kind: "StatefulSet", Name: "db", Controller: &yes}}}}, "db"},
		{"generateName", corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "job-"}}, "job"},
		{"name", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "solo"}}, "solo"},
	} {
		if got := WorkloadName(&tc.pod); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
