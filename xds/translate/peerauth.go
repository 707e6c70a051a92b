package translate

import (
	"cmp"
	"maps"
	"slices"
	"strconv"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/api/validation"
	"github.com/capstanmesh/capstan/xds/ir"
)

// peerAuthIndex answers "which mTLS mode does this workload port accept?".
// Precedence: the oldest workload policy whose selector matches the pod
// (port-level mode, then its own mode), then the oldest namespace-wide policy,
// then the Mesh. An unset mode ("" in the index) inherits from the next level.
type peerAuthIndex struct {
	mesh     ir.MTLSMode
	statuses *statusSet
	// namespaces holds the winning namespace-wide policy of each namespace.
	namespaces map[string]*nsPeerAuth
	// workloads holds each namespace's selector policies, oldest first.
	workloads map[string][]*workloadPeerAuth
}

type nsPeerAuth struct {
	ref  ir.ObjectRef
	mode ir.MTLSMode
}

type workloadPeerAuth struct {
	ref      ir.ObjectRef
	selector map[string]string
	mode     ir.MTLSMode
	ports    map[uint32]ir.MTLSMode
}

func newPeerAuthIndex(mesh ir.MTLSMode, statuses *statusSet) *peerAuthIndex {
	return &peerAuthIndex{
		mesh:       mesh,
		statuses:   statuses,
		namespaces: map[string]*nsPeerAuth{},
		workloads:  map[string][]*workloadPeerAuth{},
	}
}

// translatePeerAuthentications indexes the policies, oldest first, and records their status.
func (t *translator) translatePeerAuthentications() {
	t.peerAuth = newPeerAuthIndex(t.meshMode, t.statuses)
	for _, pa := range byAge(t.in.PeerAuthentications) {
		t.peerAuth.add(pa, t.statuses.get(KindPeerAuthentication, pa, false))
	}
}

// add indexes pa. Callers add policies oldest first. A policy with a
// problem (api/validation) is left out.
func (idx *peerAuthIndex) add(pa *meshv1alpha1.PeerAuthentication, st *objectStatus) {
	if problems := validation.PeerAuthentication(pa); len(problems) > 0 {
		reportInvalid(st, problems)
		return
	}
	mode, ok := peerMode(pa.Spec.MTLS.Mode)
	if !ok {
		st.invalidf("spec.mtls.mode: unknown mode %q; UNSET is used", pa.Spec.MTLS.Mode)
	}
	if isNamespaceWide(pa) {
		idx.addNamespaceWide(pa, mode, st)
		return
	}
	idx.workloads[pa.Namespace] = append(idx.workloads[pa.Namespace], &workloadPeerAuth{
		ref:      st.ref,
		selector: pa.Spec.Selector.MatchLabels,
		mode:     mode,
		ports:    portModes(pa.Spec.PortLevelMTLS, st),
	})
}

func (idx *peerAuthIndex) addNamespaceWide(pa *meshv1alpha1.PeerAuthentication, mode ir.MTLSMode, st *objectStatus) {
	if len(pa.Spec.PortLevelMTLS) > 0 {
		st.invalidf("spec.portLevelMtls: needs a selector with matchLabels; ignored")
	}
	if w := idx.namespaces[pa.Namespace]; w != nil {
		st.conflictf("namespace %s already has a namespace-wide policy: %s", pa.Namespace, idx.statuses.winner(w.ref, st))
		return
	}
	idx.namespaces[pa.Namespace] = &nsPeerAuth{ref: st.ref, mode: mode}
}

// isNamespaceWide: a policy without selector labels applies to the whole namespace.
func isNamespaceWide(pa *meshv1alpha1.PeerAuthentication) bool {
	return pa.Spec.Selector == nil || len(pa.Spec.Selector.MatchLabels) == 0
}

// peerMode converts a mode; "" means inherit. ok is false for an unknown mode.
func peerMode(m meshv1alpha1.PeerMTLSMode) (ir.MTLSMode, bool) {
	switch m {
	case meshv1alpha1.PeerMTLSStrict:
		return ir.MTLSStrict, true
	case meshv1alpha1.PeerMTLSPermissive:
		return ir.MTLSPermissive, true
	case meshv1alpha1.PeerMTLSDisable:
		return ir.MTLSDisable, true
	case meshv1alpha1.PeerMTLSUnset, "":
		return "", true
	default:
		return "", false
	}
}

// portModes converts the port-level modes; keys that are not port numbers are
// reported and ignored, in sorted order so that messages are deterministic.
func portModes(in map[string]meshv1alpha1.PeerMTLS, st *objectStatus) map[uint32]ir.MTLSMode {
	out := map[uint32]ir.MTLSMode{}
	for _, key := range slices.Sorted(maps.Keys(in)) {
		port, err := strconv.ParseUint(key, 10, 16)
		if err != nil || port == 0 {
			st.invalidf("spec.portLevelMtls[%q]: not a port number; ignored", key)
			continue
		}
		mode, ok := peerMode(in[key].Mode)
		if !ok {
			st.invalidf("spec.portLevelMtls[%q].mode: unknown mode %q; UNSET is used", key, in[key].Mode)
		}
		out[uint32(port)] = mode
	}
	return out
}

// mode is the effective mTLS mode of a container port of a pod.
func (idx *peerAuthIndex) mode(ns string, labels map[string]string, port uint32) ir.MTLSMode {
	var workload, namespace ir.MTLSMode
	if w := idx.workloadFor(ns, labels); w != nil {
		workload = cmp.Or(w.ports[port], w.mode)
	}
	if n := idx.namespaces[ns]; n != nil {
		namespace = n.mode
	}
	return cmp.Or(workload, namespace, idx.mesh)
}

// workloadFor is the oldest selector policy of ns matching labels, or nil.
func (idx *peerAuthIndex) workloadFor(ns string, labels map[string]string) *workloadPeerAuth {
	for _, w := range idx.workloads[ns] {
		if selects(w.selector, labels) {
			return w
		}
	}
	return nil
}

// selects reports whether labels carry every label of a non-empty selector.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// PeerAuthenticationsOf returns the PeerAuthentications whose mode the
// sidecar's inbound config carries: the workload policy that selects its pod
// and the namespace-wide policy, when they exist (each at most once).
func (r *Result) PeerAuthenticationsOf(p *ir.Proxy) []ir.ObjectRef {
	if r.peerAuth == nil || p.Kind != ir.ProxySidecar {
		return nil
	}
	var out []ir.ObjectRef
	if w := r.peerAuth.workloadFor(p.Namespace, p.Labels); w != nil {
		out = append(out, w.ref)
	}
	if n := r.peerAuth.namespaces[p.Namespace]; n != nil {
		out = append(out, n.ref)
	}
	return out
}
