package analyze

import (
	"fmt"
	"slices"
	"strings"
)

// GatewayAPIGroup is the Gateway API's API group.
const GatewayAPIGroup = "gateway.networking.k8s.io"

// GatewayAPIBundleVersionAnnotation is the annotation of a Gateway API CRD
// naming its release.
const GatewayAPIBundleVersionAnnotation = "gateway.networking.k8s.io/bundle-version"

// SupportedGatewayAPIVersions are the Gateway API releases whose routes
// Capstan programs. None yet: mesh routes are MeshRoutes (GAMMA support
// will add its releases here).
var SupportedGatewayAPIVersions []string

// gatewayAPIVersions (CAP009): Gateway API objects exist, but their CRD's
// release is not one Capstan supports: the mesh ignores them.
func gatewayAPIVersions(w *world) []Finding {
	var out []Finding
	for _, k := range w.in.GatewayAPI {
		if len(k.Objects) == 0 || slices.Contains(SupportedGatewayAPIVersions, k.BundleVersion) {
			continue
		}
		version := k.BundleVersion
		if version == "" {
			version = "unknown (no " + GatewayAPIBundleVersionAnnotation + " annotation)"
		}
		supported := "none yet"
		if len(SupportedGatewayAPIVersions) > 0 {
			supported = strings.Join(SupportedGatewayAPIVersions, ", ")
		}
		out = append(out, Finding{Code: CodeGatewayAPIVersion, Severity: SeverityWarning,
			Object: ObjectRef{Kind: "CustomResourceDefinition", Name: k.CRD},
			Message: fmt.Sprintf("%d %s object(s) exist (%s), Gateway API release %s; Capstan supports %s: the mesh does not program them",
				len(k.Objects), k.Kind, strings.Join(first(k.Objects, maxCallersNamed), ", "), version, supported),
			Fix: "express mesh routing as MeshRoutes (docs/api.md); keep the Gateway API objects for a gateway implementation that supports them",
		})
	}
	return out
}

func first(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(slices.Clone(s[:n]), fmt.Sprintf("and %d more", len(s)-n))
}
