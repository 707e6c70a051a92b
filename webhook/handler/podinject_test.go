package handler

import (
	"context"
	"encoding/json"
	goruntime "runtime"
	"strings"
	"testing"

	jsonpatch "gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/webhook/inject"
)

func testPod(labels, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: "web-", Labels: labels, Annotations: annotations},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}},
	}
}

func namespace(name string, enabled bool) *corev1.Namespace {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if enabled {
		ns.Labels = map[string]string{meshv1alpha1.LabelInject: meshv1alpha1.InjectEnabled}
	}
	return ns
}

func hasPatchTo(patches []jsonpatch.JsonPatchOperation, path string) bool {
	for _, p := range patches {
		if strings.HasPrefix(p.Path, path) {
			return true
		}
	}
	return false
}

func TestPodResponse(t *testing.T) {
	cfg := inject.ConfigFromMesh(nil, inject.Options{})
	badCfg := cfg
	badCfg.ProxyLogLevel = "loud"
	for _, tc := range []struct {
		name       string
		pod        *corev1.Pod
		ns         *corev1.Namespace
		cfg        inject.Config
		wantPatch  bool
		wantDenied string // substring of the denial
		wantCode   int32
	}{
		{name: "plain namespace", pod: testPod(nil, nil), ns: namespace("shop", false), cfg: cfg},
		{name: "unknown namespace", pod: testPod(nil, nil), cfg: cfg},
		{name: "enabled namespace", pod: testPod(nil, nil), ns: namespace("shop", true), cfg: cfg, wantPatch: true},
		{name: "pod opts in", pod: testPod(map[string]string{meshv1alpha1.LabelInject: "true"}, nil), ns: namespace("shop", false), cfg: cfg, wantPatch: true},
		{name: "pod opts out", pod: testPod(map[string]string{meshv1alpha1.LabelInject: "false"}, nil), ns: namespace("shop", true), cfg: cfg},
		{name: "operator namespace", pod: testPod(nil, nil), ns: namespace(inject.DefaultOperatorNamespace, true), cfg: cfg},
		{name: "bad annotation", pod: testPod(nil, map[string]string{meshv1alpha1.AnnotationProxyCPU: "lots"}),
			ns: namespace("shop", true), cfg: cfg, wantDenied: `annotation capstan.dev/proxy-cpu: "lots" is not a resource quantity`, wantCode: 403},
		{name: "bad dependencies", pod: testPod(nil, map[string]string{meshv1alpha1.AnnotationDependencies: "payments.billing, reviews"}),
			ns: namespace("shop", true), cfg: cfg, wantDenied: `metadata.annotations[capstan.dev/dependencies]`, wantCode: 403},
		{name: "good dependencies", pod: testPod(nil, map[string]string{meshv1alpha1.AnnotationDependencies: "payments.billing, ledger/*"}),
			ns: namespace("shop", true), cfg: cfg, wantPatch: true},
		{name: "bad configuration", pod: testPod(nil, nil), ns: namespace("shop", true), cfg: badCfg, wantDenied: "injector configuration", wantCode: 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := json.Marshal(tc.pod)
			if err != nil {
				t.Fatal(err)
			}
			resp := PodResponse(raw, tc.pod, "shop", tc.ns, tc.cfg)
			if tc.wantDenied != "" {
				if resp.Allowed || resp.Result == nil || !strings.Contains(resp.Result.Message, tc.wantDenied) || resp.Result.Code != tc.wantCode {
					t.Fatalf("response %+v, want denied (%d) with %q", resp.AdmissionResponse, tc.wantCode, tc.wantDenied)
				}
				return
			}
			if !resp.Allowed {
				t.Fatalf("denied: %+v", resp.Result)
			}
			if got := len(resp.Patches) > 0; got != tc.wantPatch {
				t.Fatalf("patched %v, want %v (%s)", got, tc.wantPatch, resp.Result.Message)
			}
			if !tc.wantPatch {
				if !strings.HasPrefix(resp.Result.Message, "not injected: ") {
					t.Errorf("message %q, want the reason", resp.Result.Message)
				}
				return
			}
			if *resp.PatchType != admissionv1.PatchTypeJSONPatch {
				t.Errorf("patch type %v", *resp.PatchType)
			}
			for _, path := range []string{"/spec/initContainers", "/spec/volumes", "/metadata/annotations"} {
				if !hasPatchTo(resp.Patches, path) {
					t.Errorf("no patch to %s in %v", path, resp.Patches)
				}
			}
			if hasPatchTo(resp.Patches, "/metadata/namespace") {
				t.Errorf("the patch sets the namespace: %v", resp.Patches)
			}
			if tc.pod.Namespace != "" || len(tc.pod.Spec.InitContainers) != 0 {
				t.Error("PodResponse modified the pod")
			}
		})
	}
}

func TestPodInjectorHandle(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := meshv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	mesh := &meshv1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: meshv1alpha1.MeshName},
		Spec: meshv1alpha1.MeshSpec{Proxy: meshv1alpha1.ProxyConfig{Image: "example.com/envoy:custom"}}}
	// The cache has the namespace without its label; the API server has it labelled.
	stale := fake.NewClientBuilder().WithScheme(scheme).WithObjects(namespace("shop", false), mesh).Build()
	fresh := fake.NewClientBuilder().WithScheme(scheme).WithObjects(namespace("shop", true)).Build()
	raw, err := json.Marshal(testPod(nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		Operation: admissionv1.Create, Namespace: "shop",
		Kind:   metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Object: runtime.RawExtension{Raw: raw},
	}}

	h := &PodInjector{Client: stale, APIReader: fresh, Decoder: admission.NewDecoder(scheme)}
	SetCPUAccounting(true)
	defer SetCPUAccounting(false)
	injected, skipped, failed := injectionCount(t, OutcomeInjected), injectionCount(t, OutcomeSkipped), injectionCount(t, OutcomeError)
	resp := h.Handle(context.Background(), req)
	if !resp.Allowed || len(resp.Patches) == 0 {
		t.Fatalf("with a stale cache: %+v, want the pod injected", resp.AdmissionResponse)
	}
	found := false
	for _, p := range resp.Patches {
		if b, _ := json.Marshal(p.Value); strings.Contains(string(b), "example.com/envoy:custom") {
			found = true
		}
	}
	if !found {
		t.Errorf("the proxy image of the Mesh is not in the patch %v", resp.Patches)
	}

	h = &PodInjector{Client: stale}
	if resp := h.Handle(context.Background(), req); !resp.Allowed || len(resp.Patches) != 0 {
		t.Errorf("without an API reader, the cached plain namespace decides: %+v", resp.AdmissionResponse)
	}

	req.Operation = admissionv1.Update
	if resp := h.Handle(context.Background(), req); !resp.Allowed || len(resp.Patches) != 0 {
		t.Errorf("update: %+v, want allowed untouched", resp.AdmissionResponse)
	}
	req.Operation = admissionv1.Create
	req.Object.Raw = []byte("{")
	if resp := h.Handle(context.Background(), req); resp.Allowed || resp.Result.Code != 400 {
		t.Errorf("bad object: %+v, want 400", resp.AdmissionResponse)
	}
	if goruntime.GOOS == "linux" && cpuCount(t, OutcomeInjected) == 0 {
		t.Errorf("%s{outcome=injected} has no observation", InjectionCPUMetric)
	}
	if d := injectionCount(t, OutcomeInjected) - injected; d != 1 {
		t.Errorf("%s{outcome=injected} grew by %d, want 1", InjectionDurationMetric, d)
	}
	if d := injectionCount(t, OutcomeSkipped) - skipped; d != 2 {
		t.Errorf("%s{outcome=skipped} grew by %d, want 2", InjectionDurationMetric, d)
	}
	if d := injectionCount(t, OutcomeError) - failed; d != 1 {
		t.Errorf("%s{outcome=error} grew by %d, want 1", InjectionDurationMetric, d)
	}
}

// BenchmarkPodInjectorHandle measures the webhook's own handling of one Pod
// creation (decode, cached reads, inject, JSON patch), without the network.
func BenchmarkPodInjectorHandle(b *testing.B) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		b.Fatal(err)
	}
	if err := meshv1alpha1.AddToScheme(scheme); err != nil {
		b.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(namespace("shop", true)).Build()
	h := &PodInjector{Client: c, APIReader: c, Decoder: admission.NewDecoder(scheme)}
	raw, err := json.Marshal(testPod(nil, nil))
	if err != nil {
		b.Fatal(err)
	}
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		Operation: admissionv1.Create, Namespace: "shop",
		Kind:   metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Object: runtime.RawExtension{Raw: raw},
	}}
	b.ReportAllocs()
	for b.Loop() {
		if resp := h.Handle(context.Background(), req); len(resp.Patches) == 0 {
			b.Fatalf("not injected: %+v", resp.Result)
		}
	}
}
