package analyze

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// weightedBypass (CAP003, seed failure 3): a MeshRoute that splits traffic
// by weight, whose pods are also reached around the mesh, where no sidecar
// applies the weights: by workloads without a sidecar, by Ingress objects
// that send to the Services, and through NodePort or LoadBalancer Services
// that select the same pods. Those requests are spread by kube-proxy over
// the pods, so the canary gets more (or less) than its weight.
func weightedBypass(w *world) []Finding {
	var out []Finding
	for i := range w.in.MeshRoutes {
		mr := &w.in.MeshRoutes[i]
		split, svcs := w.weightedSplit(mr)
		if split == "" || len(svcs) == 0 {
			continue
		}
		pods := w.splitWorkloads(svcs)
		callers := w.unmeshedCallers(svcs, mr.Namespace, func(c *workload) bool { return slices.Contains(pods, c) })
		ingresses := w.ingressesTo(svcs)
		exposed := w.exposingServices(pods)
		if len(callers)+len(ingresses)+len(exposed) == 0 {
			continue
		}
		out = append(out, w.bypassFinding(mr, split, callers, ingresses, exposed))
	}
	return out
}

func (w *world) bypassFinding(mr *meshv1alpha1.MeshRoute, split string, callers []caller, ingresses []*networkingv1.Ingress, exposed []*corev1.Service) Finding {
	var paths, fixes []string
	related := callerRefs(callers)
	if len(callers) > 0 {
		paths = append(paths, fmt.Sprintf("%d workload(s) without a sidecar: %s", len(callers), callerList(callers)))
		fixes = append(fixes, w.injectFix(callers))
	}
	if len(ingresses) > 0 {
		names := make([]string, 0, len(ingresses))
		for _, ing := range ingresses {
			names = append(names, ing.Namespace+"/"+ing.Name)
			related = append(related, ObjectRef{Kind: KindIngress, Namespace: ing.Namespace, Name: ing.Name})
		}
		paths = append(paths, "Ingress "+strings.Join(names, ", ")+" (the ingress controller sends to the pods directly)")
		fixes = append(fixes, "inject the ingress controller's pods (capstan.dev/inject=true on its pod template) and have it send to the "+
			"Service rather than to its endpoints, so that its requests take the route")
	}
	if len(exposed) > 0 {
		names := make([]string, 0, len(exposed))
		for _, s := range exposed {
			names = append(names, fmt.Sprintf("%s/%s (%s)", s.Namespace, s.Name, s.Spec.Type))
			related = append(related, serviceRef(s))
		}
		paths = append(paths, "Service "+strings.Join(names, ", ")+" exposes the pods outside the cluster")
		fixes = append(fixes, "make those Services type ClusterIP and expose the route through a meshed ingress")
	}
	return Finding{
		Code:     CodeWeightedBypass,
		Severity: SeverityWarning,
		Object:   ObjectRef{Kind: KindMeshRoute, Namespace: mr.Namespace, Name: mr.Name},
		Related:  related,
		Message: fmt.Sprintf("the route splits traffic by weight (%s), but its pods are reached around the mesh, where the weights do not apply, "+
			"so the real split differs: %s", split, strings.Join(paths, "; ")),
		Fix: strings.Join(fixes, "; "),
	}
}

// weightedSplit describes the route's first rule with several weighted
// destinations ("reviews:v1=90, reviews:v2=10"), with the Services of its
// hosts and destinations; "" when it splits nothing.
func (w *world) weightedSplit(mr *meshv1alpha1.MeshRoute) (string, []*corev1.Service) {
	for i := range mr.Spec.HTTP {
		rule := &mr.Spec.HTTP[i]
		if len(rule.Route) < 2 {
			continue
		}
		var parts []string
		var svcs []*corev1.Service
		for _, d := range rule.Route {
			parts = append(parts, fmt.Sprintf("%s=%d", destinationName(d), weightOf(d)))
			svcs = appendService(svcs, w.service(d.Host, mr.Namespace))
		}
		for _, h := range mr.Spec.Hosts {
			svcs = appendService(svcs, w.service(h, mr.Namespace))
		}
		return strings.Join(parts, ", "), svcs
	}
	return "", nil
}

func destinationName(d meshv1alpha1.Destination) string {
	if d.Subset != "" {
		return d.Host + ":" + d.Subset
	}
	return d.Host
}

func weightOf(d meshv1alpha1.Destination) int32 {
	if d.Weight == nil {
		return 0
	}
	return *d.Weight
}

func appendService(svcs []*corev1.Service, s *corev1.Service) []*corev1.Service {
	if s == nil || slices.Contains(svcs, s) {
		return svcs
	}
	return append(svcs, s)
}

// splitWorkloads are the workloads behind the Services.
func (w *world) splitWorkloads(svcs []*corev1.Service) []*workload {
	var out []*workload
	for _, s := range svcs {
		for _, wl := range w.selected(s, nil) {
			if !slices.Contains(out, wl) {
				out = append(out, wl)
			}
		}
	}
	return out
}

// ingressesTo lists the Ingresses whose backends are one of svcs.
func (w *world) ingressesTo(svcs []*corev1.Service) []*networkingv1.Ingress {
	var out []*networkingv1.Ingress
	for i := range w.in.Ingresses {
		ing := &w.in.Ingresses[i]
		for _, name := range ingressBackends(ing) {
			if slices.ContainsFunc(svcs, func(s *corev1.Service) bool { return s.Namespace == ing.Namespace && s.Name == name }) {
				out = append(out, ing)
				break
			}
		}
	}
	return out
}

func ingressBackends(ing *networkingv1.Ingress) []string {
	var out []string
	if b := ing.Spec.DefaultBackend; b != nil && b.Service != nil {
		out = append(out, b.Service.Name)
	}
	for _, r := range ing.Spec.Rules {
		if r.HTTP == nil {
			continue
		}
		for _, p := range r.HTTP.Paths {
			if p.Backend.Service != nil {
				out = append(out, p.Backend.Service.Name)
			}
		}
	}
	return out
}

// exposingServices lists the NodePort and LoadBalancer Services that
// select any of the workloads.
func (w *world) exposingServices(wls []*workload) []*corev1.Service {
	var out []*corev1.Service
	for i := range w.in.Services {
		s := &w.in.Services[i]
		if s.Spec.Type != corev1.ServiceTypeNodePort && s.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		if slices.ContainsFunc(wls, func(wl *workload) bool { return selects(s, wl) }) {
			out = append(out, s)
		}
	}
	return out
}
