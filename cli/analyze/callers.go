package analyze

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/xds/ir"
)

// caller is a workload without a sidecar that calls, or can call, a Service.
type caller struct {
	wl *workload
	// evidence says why it is a caller: the host it names, or that it
	// shares the namespace.
	evidence string
	// named is set when its pod spec names the Service.
	named bool
}

// maxCallersNamed bounds how many callers a message lists.
const maxCallersNamed = 5

// unmeshedCallers lists the workloads without a sidecar, other than
// exclude, that name one of svcs in their pod spec (command, args or env),
// then those in namespace ns that name none: they can call it too.
func (w *world) unmeshedCallers(svcs []*corev1.Service, ns string, exclude func(*workload) bool) []caller {
	var named, near []caller
	for _, wl := range w.unmeshed {
		if exclude(wl) {
			continue
		}
		if host, ok := namesService(wl, svcs); ok {
			named = append(named, caller{wl: wl, named: true, evidence: fmt.Sprintf("names %s in its pod spec; %s", host, wl.why)})
			continue
		}
		if wl.ref.Namespace == ns {
			near = append(near, caller{wl: wl, evidence: "in the same namespace, can call it; " + wl.why})
		}
	}
	return append(named, near...)
}

// namesService returns the first host of svcs that wl's pod spec names.
func namesService(wl *workload, svcs []*corev1.Service) (string, bool) {
	for _, svc := range svcs {
		for _, h := range hostNames(svc, wl.ref.Namespace) {
			if slices.Contains(wl.tokens, h) {
				return h, true
			}
		}
	}
	return "", false
}

// hostNames are the names by which a pod of namespace ns reaches svc.
func hostNames(svc *corev1.Service, ns string) []string {
	fqdn := ir.ServiceFQDN(svc.Name, svc.Namespace)
	names := []string{fqdn, svc.Name + "." + svc.Namespace + ".svc", svc.Name + "." + svc.Namespace}
	if ns == svc.Namespace {
		names = append(names, svc.Name)
	}
	return names
}

// specTokens splits the containers' commands, args and env values into
// host-like words ("http://reviews:9080/x" gives "http", "reviews", "9080", "x").
func specTokens(spec *corev1.PodSpec) []string {
	if spec == nil {
		return nil
	}
	var words []string
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range cs {
			words = append(words, cs[i].Command...)
			words = append(words, cs[i].Args...)
			for _, e := range cs[i].Env {
				words = append(words, e.Value)
			}
		}
	}
	var out []string
	for _, w := range words {
		for _, t := range strings.FieldsFunc(strings.ToLower(w), notHostChar) {
			out = append(out, strings.TrimSuffix(t, "."))
		}
	}
	return out
}

func notHostChar(r rune) bool {
	return (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '.' && r != '-'
}

// callerList names up to maxCallersNamed callers with their evidence.
func callerList(cs []caller) string {
	parts := make([]string, 0, min(len(cs), maxCallersNamed)+1)
	for i, c := range cs {
		if i == maxCallersNamed {
			parts = append(parts, fmt.Sprintf("and %d more", len(cs)-i))
			break
		}
		parts = append(parts, fmt.Sprintf("%s (%s)", c.wl.ref, c.evidence))
	}
	return strings.Join(parts, "; ")
}

func callerRefs(cs []caller) []ObjectRef {
	out := make([]ObjectRef, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.wl.ref)
	}
	return out
}

func anyNamed(cs []caller) bool {
	return slices.ContainsFunc(cs, func(c caller) bool { return c.named })
}

// injectFix tells how to put the callers in the mesh: label their
// namespaces (when not yet enabled) and restart them.
func (w *world) injectFix(cs []caller) string {
	var nss []string
	for _, c := range cs {
		if !slices.Contains(nss, c.wl.ref.Namespace) {
			nss = append(nss, c.wl.ref.Namespace)
		}
	}
	slices.Sort(nss)
	cmds := make([]string, 0, len(nss))
	for _, ns := range nss {
		restart := "capstanctl restart-uninjected -n " + ns
		if !meshEnabled(w.namespaces[ns]) {
			restart = fmt.Sprintf("kubectl label namespace %s %s=%s && %s", ns, meshv1alpha1.LabelInject, meshv1alpha1.InjectEnabled, restart)
		}
		cmds = append(cmds, restart)
	}
	return "put the callers in the mesh: " + strings.Join(cmds, "; ") + " (Jobs and CronJobs get the sidecar on their next run)"
}

func meshEnabled(ns *corev1.Namespace) bool {
	return ns != nil && ns.Labels[meshv1alpha1.LabelInject] == meshv1alpha1.InjectEnabled
}
