package analyze

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// strictBlocksCallers (CAP002, seed failure 2): a workload with a sidecar
// that accepts only mTLS (STRICT, from its PeerAuthentication, its
// namespace's or the Mesh's default) behind a Service that workloads
// without a sidecar call: pods, Jobs and CronJobs that name the Service in
// their pod spec (an error), or that share its namespace (a warning: they
// can). Their plaintext requests are refused. The fix proposed is a
// workload-scoped PERMISSIVE policy, not a namespace-wide one.
func strictBlocksCallers(w *world) []Finding {
	var out []Finding
	for _, wl := range w.workloads {
		if !wl.meshed {
			continue
		}
		policy, strict := w.strictPolicy(wl)
		if !strict {
			continue
		}
		svcs := w.servicesOf(wl)
		if len(svcs) == 0 {
			continue
		}
		callers := w.unmeshedCallers(svcs, wl.ref.Namespace, func(c *workload) bool { return c.ref == wl.ref })
		if len(callers) == 0 {
			continue
		}
		out = append(out, w.strictFinding(wl, policy, svcs, callers))
	}
	return out
}

func (w *world) strictFinding(wl *workload, policy ObjectRef, svcs []*corev1.Service, callers []caller) Finding {
	sev := SeverityWarning
	if anyNamed(callers) {
		sev = SeverityError
	}
	related := []ObjectRef{policy}
	names := make([]string, 0, len(svcs))
	for _, s := range svcs {
		related = append(related, serviceRef(s))
		names = append(names, s.Name)
	}
	return Finding{
		Code:     CodeStrictBlocksCallers,
		Severity: sev,
		Object:   wl.ref,
		Related:  append(related, callerRefs(callers)...),
		Message: fmt.Sprintf("%s accepts only mTLS (STRICT, from %s), but %d workload(s) without a sidecar call Service %s in plaintext "+
			"and are refused: %s", wl.ref, policy, len(callers), strings.Join(names, ", "), callerList(callers)),
		Fix: w.injectFix(callers) + ". Until they are, exempt this workload only, not the namespace:\n" + permissivePolicy(wl),
	}
}

// generatedLabels are pod labels controllers add, left out of selectors.
var generatedLabels = []string{"pod-template-hash", "controller-revision-hash", "statefulset.kubernetes.io/pod-name",
	"pod-template-generation", "controller-uid", "job-name", "batch.kubernetes.io/controller-uid", "batch.kubernetes.io/job-name"}

// permissivePolicy is a PeerAuthentication that makes the workload
// PERMISSIVE, selected by its own pod labels.
func permissivePolicy(wl *workload) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: %s\nkind: PeerAuthentication\nmetadata:\n  name: %s-permissive\n  namespace: %s\n",
		meshv1alpha1.GroupVersion, wl.ref.Name, wl.ref.Namespace)
	b.WriteString("spec:\n  selector:\n    matchLabels:\n")
	n := 0
	for _, k := range slices.Sorted(maps.Keys(wl.labels)) {
		if !slices.Contains(generatedLabels, k) {
			fmt.Fprintf(&b, "      %s: %q\n", k, wl.labels[k])
			n++
		}
	}
	if n == 0 {
		// Never an empty selector: that would make the whole namespace PERMISSIVE.
		fmt.Fprintf(&b, "      app: %q # the workload has no labels: add this one to its pods first\n", wl.ref.Name)
	}
	b.WriteString("  mtls:\n    mode: PERMISSIVE\n")
	return b.String()
}

// servicesOf lists the Services that select wl, by name.
func (w *world) servicesOf(wl *workload) []*corev1.Service {
	var out []*corev1.Service
	for _, s := range w.servicesByNamespace[wl.ref.Namespace] {
		if selects(s, wl) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b *corev1.Service) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// strictPolicy says whether wl accepts only mTLS, and which object says
// so, with the translator's precedence: the oldest workload policy whose
// selector matches, then the oldest namespace-wide policy, then the Mesh;
// an unset mode inherits. A workload policy with a STRICT port counts.
func (w *world) strictPolicy(wl *workload) (ObjectRef, bool) {
	var nsWide *meshv1alpha1.PeerAuthentication
	for _, pa := range w.peerAuthsByAge(wl.ref.Namespace) {
		if pa.Spec.Selector == nil || len(pa.Spec.Selector.MatchLabels) == 0 {
			if nsWide == nil {
				nsWide = pa
			}
			continue
		}
		if !matchLabels(pa.Spec.Selector.MatchLabels, wl.labels) {
			continue
		}
		if hasStrictPort(pa) {
			return paRef(pa), true
		}
		if mode := pa.Spec.MTLS.Mode; mode != "" && mode != meshv1alpha1.PeerMTLSUnset {
			return paRef(pa), mode == meshv1alpha1.PeerMTLSStrict
		}
		break
	}
	if nsWide != nil {
		if mode := nsWide.Spec.MTLS.Mode; mode != "" && mode != meshv1alpha1.PeerMTLSUnset {
			return paRef(nsWide), mode == meshv1alpha1.PeerMTLSStrict
		}
	}
	mesh := ObjectRef{Kind: KindMesh, Name: meshv1alpha1.MeshName}
	return mesh, w.in.Mesh != nil && w.in.Mesh.Spec.MTLS.Mode == meshv1alpha1.MTLSStrict
}

func hasStrictPort(pa *meshv1alpha1.PeerAuthentication) bool {
	for _, m := range pa.Spec.PortLevelMTLS {
		if m.Mode == meshv1alpha1.PeerMTLSStrict {
			return true
		}
	}
	return false
}

func paRef(pa *meshv1alpha1.PeerAuthentication) ObjectRef {
	return ObjectRef{Kind: KindPeerAuthentication, Namespace: pa.Namespace, Name: pa.Name}
}

// peerAuthsByAge lists namespace ns's PeerAuthentications, oldest first.
func (w *world) peerAuthsByAge(ns string) []*meshv1alpha1.PeerAuthentication {
	var out []*meshv1alpha1.PeerAuthentication
	for i := range w.in.PeerAuthentications {
		if pa := &w.in.PeerAuthentications[i]; pa.Namespace == ns {
			out = append(out, pa)
		}
	}
	slices.SortFunc(out, func(a, b *meshv1alpha1.PeerAuthentication) int {
		return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time), cmp.Compare(a.Name, b.Name))
	})
	return out
}
