package webhooks

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// refused creates pod and checks that the injection webhook denies it with
// every one of wants in the message.
func refused(t *testing.T, pod *corev1.Pod, wants ...string) {
	t.Helper()
	err := env.Client.Create(context.Background(), pod)
	if err == nil {
		t.Fatalf("the pod was created: init containers %v, annotations %v", containerNames(pod.Spec.InitContainers), pod.Annotations)
	}
	if !apierrors.IsForbidden(err) {
		t.Errorf("error %v is not Forbidden", err)
	}
	for _, want := range append([]string{`admission webhook "inject.capstan.dev" denied the request`}, wants...) {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

// TestPodAsProxyUIDIsRefused: a container running as the proxy's UID (or
// GID), set on the container or inherited from the pod, would bypass
// capture; the pod is refused with the field named.
func TestPodAsProxyUIDIsRefused(t *testing.T) {
	t.Parallel()
	ns := enabledNamespace(t)
	onContainer := newPod(ns, nil, nil)
	onContainer.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{RunAsUser: ptr.To[int64](meshv1alpha1.ProxyUID)}
	refused(t, onContainer, "spec.containers[0].securityContext.runAsUser is 1337, the proxy's UID", "container web would bypass the sidecar")

	onPod := newPod(ns, nil, nil)
	onPod.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsGroup: ptr.To[int64](meshv1alpha1.ProxyUID)}
	refused(t, onPod, "spec.securityContext.runAsGroup (inherited by spec.containers[0]) is 1337, the proxy's GID")

	// Another UID is fine.
	fine := newPod(ns, nil, nil)
	fine.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1000), RunAsGroup: ptr.To[int64](1000)}
	assertInjected(t, createPod(t, fine))
}

// TestForgedStatusIsRefused: a capstan.dev/status annotation (what the
// injector uses to recognise an injected pod) without the sidecar behind
// it used to make the webhook skip the pod; it is refused now, as is a
// capstan-proxy container without the annotation.
func TestForgedStatusIsRefused(t *testing.T) {
	t.Parallel()
	ns := enabledNamespace(t)
	refused(t, newPod(ns, nil, map[string]string{
		meshv1alpha1.AnnotationStatus: `{"version":"dev","initContainers":["capstan-init","capstan-proxy"],"containers":[],"volumes":[]}`,
	}), "annotation capstan.dev/status says the pod is injected but it lacks init container capstan-init, init container capstan-proxy",
		"only the injector writes it")

	fakeProxy := newPod(ns, nil, nil)
	fakeProxy.Spec.Containers = append(fakeProxy.Spec.Containers, corev1.Container{Name: meshv1alpha1.ProxyContainerName, Image: "busybox:1.37"})
	refused(t, fakeProxy, "pod already has a container named capstan-proxy but no annotation capstan.dev/status")
}

// TestExcludeAllIsWarned: annotations that take all of a pod's outbound or
// inbound traffic out of capture are allowed (the pod is injected) with an
// admission warning naming the annotation; partial exclusions are quiet.
func TestExcludeAllIsWarned(t *testing.T) {
	t.Parallel()
	ns := enabledNamespace(t)
	c, w := warningClient(t)
	ctx := context.Background()

	pod := newPod(ns, nil, map[string]string{
		meshv1alpha1.AnnotationExcludeOutboundIPRanges: "0.0.0.0/1,128.0.0.0/1",
		meshv1alpha1.AnnotationExcludeInboundPorts:     "8080",
	})
	if err := c.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	assertInjected(t, pod)
	got := w.take()
	wants := []string{
		`capstan: annotation capstan.dev/exclude-outbound-ip-ranges "0.0.0.0/1,128.0.0.0/1" excludes every IPv4 destination`,
		`capstan: annotation capstan.dev/exclude-inbound-ports "8080" excludes every port the pod's containers declare (8080)`,
	}
	if len(got) != len(wants) {
		t.Fatalf("warnings %q, want %d", got, len(wants))
	}
	for i, want := range wants {
		if !strings.Contains(got[i], want) || !strings.Contains(got[i], "bypasses the sidecar (no mTLS, no mesh policy)") {
			t.Errorf("warning %q does not contain %q", got[i], want)
		}
	}

	partial := newPod(ns, nil, map[string]string{meshv1alpha1.AnnotationExcludeOutboundIPRanges: "10.0.0.0/8"})
	if err := c.Create(ctx, partial); err != nil {
		t.Fatal(err)
	}
	if got := w.take(); len(got) != 0 {
		t.Errorf("warnings %q for a partial exclusion, want none", got)
	}
}
