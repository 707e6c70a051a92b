package analyze

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Traffic is what the sidecars of some pods counted on their inbound side
// over a window: the live evidence of CAP010-CAP012. The CLI reads it from
// each sidecar's /stats/prometheus (15090) through the API server's pod
// proxy, twice, Window apart.
type Traffic struct {
	Window time.Duration
	// Pods holds the counts of each sampled pod, by "namespace/name".
	Pods map[string]PodTraffic
}

// PodTraffic is what one pod's sidecar counted over the window.
type PodTraffic struct {
	// Requests counts the HTTP requests (TCP connections on TCP ports) the
	// sidecar took in, by how they came: Mesh (mesh mTLS), Plaintext, or
	// AppTLS (a client's own TLS passed through to the app).
	Mesh, Plaintext, AppTLS float64
	// FailedHandshakes counts inbound connections that failed the mTLS
	// handshake: under STRICT, a caller without a sidecar.
	FailedHandshakes float64
}

// maxLivePods bounds how many sidecars one analyze reads.
const maxLivePods = 500

// LivePods are the pods whose sidecars the live analyzers read: running
// meshed pods behind a Service, in namespace ns ("" for all), at most
// maxLivePods of them; truncated says whether some were left out.
func LivePods(in *Inputs, ns string) (pods []string, truncated bool) {
	w := newWorld(in)
	for _, wl := range w.workloads {
		if !wl.meshed || (ns != "" && wl.ref.Namespace != ns) || len(w.servicesOf(wl)) == 0 {
			continue
		}
		pods = append(pods, wl.pods...)
	}
	slices.Sort(pods)
	if len(pods) > maxLivePods {
		return pods[:maxLivePods], true
	}
	return pods, false
}

// sum adds up the traffic of the workload's sampled pods; false when none
// was sampled.
func (t *Traffic) sum(wl *workload) (PodTraffic, bool) {
	var total PodTraffic
	found := false
	for _, name := range wl.pods {
		pt, ok := t.Pods[name]
		if !ok {
			continue
		}
		found = true
		total.Mesh += pt.Mesh
		total.Plaintext += pt.Plaintext
		total.AppTLS += pt.AppTLS
		total.FailedHandshakes += pt.FailedHandshakes
	}
	return total, found
}

// plaintextRefused (CAP010, live evidence for seed failure 2): a STRICT
// workload whose sidecars refused connections without mesh mTLS in the
// window: callers without a sidecar are failing now.
func plaintextRefused(w *world) []Finding {
	if w.in.Traffic == nil {
		return nil
	}
	var out []Finding
	for _, wl := range w.workloads {
		policy, strict := w.strictPolicy(wl)
		if !wl.meshed || !strict {
			continue
		}
		t, ok := w.in.Traffic.sum(wl)
		if !ok || t.FailedHandshakes == 0 {
			continue
		}
		svcs := w.servicesOf(wl)
		callers := w.unmeshedCallers(svcs, wl.ref.Namespace, func(c *workload) bool { return c.ref == wl.ref })
		msg := fmt.Sprintf("%s accepts only mTLS (STRICT, from %s), and in the last %s its sidecars refused %s connection(s) "+
			"without mesh mTLS: callers without a sidecar are failing now", wl.ref, policy, w.in.Traffic.Window, count(t.FailedHandshakes))
		if len(callers) > 0 {
			msg += "; workloads without a sidecar that can call it: " + callerList(callers)
		}
		out = append(out, Finding{
			Code: CodePlaintextRefused, Severity: SeverityError, Object: wl.ref,
			Related: append([]ObjectRef{policy}, callerRefs(callers)...),
			Message: msg,
			Fix: "inject the callers (capstan.dev/inject=true on their namespace or pod template, then restart them). " +
				"Until they are, exempt this workload only, not the namespace:\n" + permissivePolicy(wl),
		})
	}
	return out
}

// plaintextCallers (CAP011, live evidence before seed failure 2): a meshed
// workload that still accepts plaintext and received plaintext requests in
// the window: making it STRICT would refuse them.
func plaintextCallers(w *world) []Finding {
	if w.in.Traffic == nil {
		return nil
	}
	var out []Finding
	for _, wl := range w.workloads {
		if _, strict := w.strictPolicy(wl); !wl.meshed || strict {
			continue
		}
		t, ok := w.in.Traffic.sum(wl)
		if !ok || t.Plaintext == 0 {
			continue
		}
		svcs := w.servicesOf(wl)
		callers := w.unmeshedCallers(svcs, wl.ref.Namespace, func(c *workload) bool { return c.ref == wl.ref })
		msg := fmt.Sprintf("in the last %s, %s of the %s requests %s received came in plaintext, from callers without a sidecar: "+
			"a STRICT PeerAuthentication would refuse them", w.in.Traffic.Window, count(t.Plaintext), count(t.Plaintext+t.Mesh+t.AppTLS), wl.ref)
		if len(callers) > 0 {
			msg += "; workloads without a sidecar that can call it: " + callerList(callers)
		}
		out = append(out, Finding{
			Code: CodePlaintextCallers, Severity: SeverityWarning, Object: wl.ref, Related: callerRefs(callers),
			Message: msg,
			Fix:     "inject the callers (capstan.dev/inject=true on their namespace or pod template, then restart them) before making this workload STRICT",
		})
	}
	return out
}

// meshBypassShare (CAP012, live evidence for seed failure 3): the share of
// the requests to a weighted route's pods that came in plaintext, around
// the client sidecars that apply the weights.
func meshBypassShare(w *world) []Finding {
	if w.in.Traffic == nil {
		return nil
	}
	var out []Finding
	for i := range w.in.MeshRoutes {
		mr := &w.in.MeshRoutes[i]
		split, svcs := w.weightedSplit(mr)
		if split == "" {
			continue
		}
		var total PodTraffic
		var names []string
		for _, wl := range w.splitWorkloads(svcs) {
			t, ok := w.in.Traffic.sum(wl)
			if !ok || !wl.meshed {
				continue
			}
			total.Mesh += t.Mesh
			total.Plaintext += t.Plaintext
			if t.Plaintext > 0 {
				names = append(names, fmt.Sprintf("%s %s", wl.ref, count(t.Plaintext)))
			}
		}
		if total.Plaintext == 0 {
			continue
		}
		share := 100 * total.Plaintext / (total.Plaintext + total.Mesh)
		out = append(out, Finding{
			Code: CodeMeshBypassShare, Severity: SeverityWarning, Object: ObjectRef{Kind: KindMeshRoute, Namespace: mr.Namespace, Name: mr.Name},
			Message: fmt.Sprintf("in the last %s, %.0f%% of the requests to the route's pods (%s of %s) came around the mesh, "+
				"where the weights (%s) do not apply: %s", w.in.Traffic.Window, share, count(total.Plaintext),
				count(total.Plaintext+total.Mesh), split, strings.Join(names, ", ")),
			Fix: "find the callers without a sidecar (CAP003 lists the paths around the mesh) and inject them, or send them through a meshed ingress",
		})
	}
	return out
}

func count(v float64) string { return fmt.Sprintf("%.0f", v) }
