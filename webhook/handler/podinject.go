package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/api/validation"
	"github.com/capstanmesh/capstan/webhook/inject"
)

// PodInjector is the Pod mutating webhook: it builds the injector's Config
// from the default Mesh, asks inject.ShouldInject, and answers with the JSON
// patch inject.Inject makes. A pod Inject refuses (*inject.PodError) is
// denied with the problems, each naming its annotation.
type PodInjector struct {
	// Client reads the pod's Namespace and the Mesh (the manager's cached client).
	Client client.Reader
	// APIReader, when set, confirms a Namespace the cache does not have or
	// has without the injection label, so that a namespace labelled a moment
	// ago is not taken for a plain one.
	APIReader client.Reader
	// Options are the injector's settings that do not come from the Mesh.
	Options inject.Options
	// Decoder decodes the Pod; nil uses a plain JSON decoder.
	Decoder admission.Decoder
}

// Handle implements admission.Handler.
func (h *PodInjector) Handle(ctx context.Context, req admission.Request) admission.Response {
	var cpu cpuClock
	if cpuAccounting.Load() {
		cpu = startCPUClock()
	}
	start := time.Now()
	resp := h.handle(ctx, req)
	observeInjection(start, cpu, outcome(resp))
	return resp
}

// outcome classifies a response for InjectionDurationMetric.
func outcome(resp admission.Response) string {
	switch {
	case !resp.Allowed && resp.Result != nil && resp.Result.Code == http.StatusForbidden:
		return OutcomeDenied
	case !resp.Allowed:
		return OutcomeError
	case len(resp.Patches) > 0:
		return OutcomeInjected
	default:
		return OutcomeSkipped
	}
}

func (h *PodInjector) handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create || req.Kind.Kind != "Pod" {
		return admission.Allowed("not a Pod creation")
	}
	pod := &corev1.Pod{}
	var err error
	if h.Decoder != nil {
		err = h.Decoder.Decode(req, pod)
	} else {
		err = json.Unmarshal(req.Object.Raw, pod)
	}
	if err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding the pod: %w", err))
	}
	ns, err := h.namespace(ctx, req.Namespace)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	mesh := &meshv1alpha1.Mesh{}
	if err := h.Client.Get(ctx, client.ObjectKey{Name: meshv1alpha1.MeshName}, mesh); apierrors.IsNotFound(err) {
		mesh = nil
	} else if err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("reading Mesh %s: %w", meshv1alpha1.MeshName, err))
	}
	cfg := inject.ConfigFromMesh(mesh, h.Options)
	resp := PodResponse(req.Object.Raw, pod, req.Namespace, ns, cfg)
	logf.FromContext(ctx).V(1).Info("sidecar injection", "namespace", req.Namespace, "pod", podName(pod),
		"allowed", resp.Allowed, "patches", len(resp.Patches), "message", message(resp))
	return resp
}

// namespace reads the Namespace, from the cache first, then (when the cache
// lacks it or its injection label) from the API server. A namespace that
// does not exist is nil.
func (h *PodInjector) namespace(ctx context.Context, name string) (*corev1.Namespace, error) {
	ns := &corev1.Namespace{}
	err := h.Client.Get(ctx, client.ObjectKey{Name: name}, ns)
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("reading namespace %s: %w", name, err)
	}
	if err == nil && (ns.Labels[meshv1alpha1.LabelInject] == meshv1alpha1.InjectEnabled || h.APIReader == nil) {
		return ns, nil
	}
	if h.APIReader == nil {
		return nil, nil
	}
	fresh := &corev1.Namespace{}
	if err := h.APIReader.Get(ctx, client.ObjectKey{Name: name}, fresh); apierrors.IsNotFound(err) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("reading namespace %s: %w", name, err)
	}
	return fresh, nil
}

// PodResponse is the webhook's answer for pod, decoded from raw and created
// in namespace (whose object is ns, nil when unknown), with cfg: allowed
// unchanged when ShouldInject says no (the reason in the message), a JSON
// patch to the injected pod (with a warning for each inject.OptOuts), denied
// with the problems for a *PodError or an invalid capstan.dev/dependencies
// annotation (api/validation.Dependencies), and
// an internal error otherwise (failurePolicy Fail then refuses the pod).
func PodResponse(raw []byte, pod *corev1.Pod, namespace string, ns *corev1.Namespace, cfg inject.Config) admission.Response {
	// The object in a creation request may leave the namespace out; the
	// injector wants it, the patch must not add it.
	in := pod.DeepCopy()
	if in.Namespace == "" {
		in.Namespace = namespace
	}
	ok, reason := inject.ShouldInject(in, ns, cfg)
	if !ok {
		return admission.Allowed("not injected: " + reason)
	}
	if errs := validation.Dependencies(in.Annotations); len(errs) > 0 {
		return admission.Denied("capstan sidecar injection refused the pod: " + errs.ToAggregate().Error())
	}
	out, err := inject.Inject(in, cfg)
	if podErr := (*inject.PodError)(nil); errors.As(err, &podErr) {
		return admission.Denied("capstan sidecar injection refused the pod: " + podErr.Error())
	}
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("injecting the sidecar: %w", err))
	}
	out.Namespace = pod.Namespace
	marshalled, err := json.Marshal(out)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("encoding the injected pod: %w", err))
	}
	resp := admission.PatchResponseFromRaw(raw, marshalled)
	if resp.Allowed {
		resp.Result = &metav1.Status{Code: http.StatusOK, Message: "injected: " + reason}
		resp.Warnings = optOutWarnings(in)
	}
	return resp
}

// optOutWarnings are the admission warnings for an injected pod whose
// annotations take all of its inbound or outbound traffic out of capture
// (inject.OptOuts): allowed, but the user sees that the pod bypasses the
// sidecar. The operator also records them as a Warning Event on the pod and
// counts the pod in Mesh.status.optedOutPods once it runs.
func optOutWarnings(pod *corev1.Pod) []string {
	optOuts := inject.OptOuts(pod)
	if len(optOuts) == 0 {
		return nil
	}
	out := make([]string, len(optOuts))
	for i, o := range optOuts {
		out[i] = "capstan: " + o
	}
	return out
}

func message(resp admission.Response) string {
	if resp.Result == nil {
		return ""
	}
	return resp.Result.Message
}

func podName(pod *corev1.Pod) string {
	if pod.Name != "" {
		return pod.Name
	}
	return pod.GenerateName + "*"
}
