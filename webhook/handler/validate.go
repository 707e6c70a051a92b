package handler

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/api/validation"
	"github.com/capstanmesh/capstan/xds/ir"
)

// AnnotationPrefix is the prefix of Capstan's annotations.
const AnnotationPrefix = "capstan.dev/"

// KnownAnnotations are the capstan.dev/ annotations Capstan reads or writes
// (api/v1alpha1/wellknown.go).
var KnownAnnotations = []string{
	meshv1alpha1.AnnotationAllowAggressiveEjection,
	meshv1alpha1.AnnotationDependencies,
	meshv1alpha1.AnnotationExcludeInboundPorts,
	meshv1alpha1.AnnotationExcludeOutboundIPRanges,
	meshv1alpha1.AnnotationExcludeOutboundPorts,
	meshv1alpha1.AnnotationOriginalProbes,
	meshv1alpha1.AnnotationProxyCPU,
	meshv1alpha1.AnnotationProxyLogLevel,
	meshv1alpha1.AnnotationProxyMemory,
	meshv1alpha1.AnnotationStatus,
}

// UnknownAnnotations warns about each annotation under capstan.dev/ that
// Capstan does not know (a typo is otherwise silently ignored), sorted.
func UnknownAnnotations(annotations map[string]string) []string {
	var warnings []string
	for _, k := range sortedKeys(annotations) {
		switch {
		case !strings.HasPrefix(k, AnnotationPrefix) || slices.Contains(KnownAnnotations, k):
		case k == meshv1alpha1.LabelInject:
			warnings = append(warnings, fmt.Sprintf("metadata.annotations[%s]: %s is a label, not an annotation; this annotation is ignored", k, k))
		default:
			warnings = append(warnings, fmt.Sprintf("metadata.annotations[%s]: unknown Capstan annotation, ignored (check its spelling)", k))
		}
	}
	return warnings
}

// DecideDestinationPolicy is the validating webhook's decision for dp (old
// is the stored object on an update, nil on a creation): every problem
// api/validation finds is refused, except one the stored object already had
// (admitted with a warning, so that objects stored before a check, or before
// the annotation was removed, can still be labelled or edited elsewhere).
// Outlier detection that can eject the whole pool is admitted with a warning
// when dp has capstan.dev/allow-aggressive-ejection: "true". Unknown
// capstan.dev/ annotations are warned about.
func DecideDestinationPolicy(old, dp *meshv1alpha1.DestinationPolicy) (admission.Warnings, error) {
	warnings := UnknownAnnotations(dp.Annotations)
	ejections := validation.WholePoolEjections(dp)
	if validation.AllowsAggressiveEjection(dp) {
		for _, e := range ejections {
			warnings = append(warnings, fmt.Sprintf("%s: %v can eject the whole pool; admitted because of %s: \"true\"",
				e.Field, e.BadValue, meshv1alpha1.AnnotationAllowAggressiveEjection))
		}
	}
	var stored field.ErrorList
	if old != nil {
		stored = append(validation.DestinationPolicy(old), validation.WholePoolEjections(old)...)
	}
	kept, refused := splitKept(validation.DestinationPolicy(dp), stored)
	for _, e := range kept {
		warnings = append(warnings, keptWarning(e, ejections))
	}
	return warnings, invalid("DestinationPolicy", dp.Name, refused)
}

// splitKept separates the problems the stored object already had (kept)
// from the new ones (refused).
func splitKept(problems, stored field.ErrorList) (kept, refused field.ErrorList) {
	had := map[string]bool{}
	for _, e := range stored {
		had[e.Error()] = true
	}
	for _, e := range problems {
		if had[e.Error()] {
			kept = append(kept, e)
		} else {
			refused = append(refused, e)
		}
	}
	return kept, refused
}

// keptWarning is the warning for a problem admitted because it is unchanged.
func keptWarning(e *field.Error, ejections field.ErrorList) string {
	for _, ej := range ejections {
		if ej.Field == e.Field {
			return fmt.Sprintf("%s: %v can eject the whole pool; admitted because it is unchanged, but a new value would be refused without %s: \"true\"",
				e.Field, e.BadValue, meshv1alpha1.AnnotationAllowAggressiveEjection)
		}
	}
	return shorten(fmt.Sprintf("%s: admitted because it is unchanged: %s", e.Field, e.Detail), maxWarningLength)
}

// maxWarningLength keeps a warning to what kubectl shows on one line; the
// status carries the whole message.
const maxWarningLength = 256

// shorten cuts s to at most n bytes (on a rune boundary), marking the cut.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const more = " …"
	cut := n - len(more)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + more
}

// invalid is the Invalid status error refusing the named object of kind for
// problems, or nil when there are none.
func invalid(kind, name string, problems field.ErrorList) error {
	if len(problems) == 0 {
		return nil
	}
	return apierrors.NewInvalid(meshv1alpha1.GroupVersion.WithKind(kind).GroupKind(), name, problems)
}

// decide is the decision of a validating webhook for obj (old is the stored
// object on an update, nil on a creation) with the problems api/validation
// finds: new problems are refused, unchanged ones admitted with a warning,
// unknown capstan.dev/ annotations warned about.
func decide[T client.Object](kind string, old, obj T, hasOld bool, problems func(T) field.ErrorList) (admission.Warnings, error) {
	warnings := UnknownAnnotations(obj.GetAnnotations())
	var stored field.ErrorList
	if hasOld {
		stored = problems(old)
	}
	kept, refused := splitKept(problems(obj), stored)
	for _, e := range kept {
		warnings = append(warnings, keptWarning(e, nil))
	}
	return warnings, invalid(kind, obj.GetName(), refused)
}

// MissingSubsets warns about each subset named by mr (in a destination or a
// mirror) that the host's DestinationPolicy does not define. Hosts resolve as
// the translator resolves them (a short name in the object's namespace); when
// several policies configure a host, the oldest one applies.
func MissingSubsets(mr *meshv1alpha1.MeshRoute, policies []meshv1alpha1.DestinationPolicy) []string {
	byHost := map[string]*meshv1alpha1.DestinationPolicy{}
	for i := range policies {
		dp := &policies[i]
		fqdn := ir.ResolveHost(dp.Spec.Host, dp.Namespace)
		if old := byHost[fqdn]; old == nil || olderThan(dp, old) {
			byHost[fqdn] = dp
		}
	}
	var warnings []string
	check := func(path *field.Path, host, subset string) {
		if subset == "" {
			return
		}
		fqdn := ir.ResolveHost(host, mr.Namespace)
		dp := byHost[fqdn]
		if dp == nil {
			warnings = append(warnings, fmt.Sprintf("%s: subset %q of host %s is not defined: no DestinationPolicy configures %s",
				path, subset, host, fqdn))
			return
		}
		names := make([]string, 0, len(dp.Spec.Subsets))
		for _, s := range dp.Spec.Subsets {
			names = append(names, s.Name)
		}
		if !slices.Contains(names, subset) {
			warnings = append(warnings, fmt.Sprintf("%s: subset %q of host %s is not defined by DestinationPolicy %s/%s (subsets: %s)",
				path, subset, host, dp.Namespace, dp.Name, strings.Join(names, ", ")))
		}
	}
	for i := range mr.Spec.HTTP {
		rule := &mr.Spec.HTTP[i]
		path := field.NewPath("spec", "http").Index(i)
		for j, d := range rule.Route {
			check(path.Child("route").Index(j).Child("subset"), d.Host, d.Subset)
		}
		if rule.Mirror != nil {
			check(path.Child("mirror", "subset"), rule.Mirror.Host, rule.Mirror.Subset)
		}
	}
	return warnings
}

// olderThan orders policies as the translator does: by creation time, then
// namespace and name.
func olderThan(a, b *meshv1alpha1.DestinationPolicy) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}

// DestinationPolicyValidator is the DestinationPolicy validating webhook.
type DestinationPolicyValidator struct{}

// ValidateCreate implements admission.Validator.
func (DestinationPolicyValidator) ValidateCreate(_ context.Context, dp *meshv1alpha1.DestinationPolicy) (admission.Warnings, error) {
	return DecideDestinationPolicy(nil, dp)
}

// ValidateUpdate implements admission.Validator.
func (DestinationPolicyValidator) ValidateUpdate(_ context.Context, old, dp *meshv1alpha1.DestinationPolicy) (admission.Warnings, error) {
	return DecideDestinationPolicy(old, dp)
}

// ValidateDelete implements admission.Validator.
func (DestinationPolicyValidator) ValidateDelete(context.Context, *meshv1alpha1.DestinationPolicy) (admission.Warnings, error) {
	return nil, nil
}

// MeshRouteValidator is the MeshRoute validating webhook: it refuses what
// api/validation refuses (regular expressions Envoy would refuse among them)
// and warns about unknown subsets and annotations.
type MeshRouteValidator struct {
	// Client lists DestinationPolicies (the manager's cached client).
	Client client.Reader
}

// ValidateCreate implements admission.Validator.
func (v *MeshRouteValidator) ValidateCreate(ctx context.Context, mr *meshv1alpha1.MeshRoute) (admission.Warnings, error) {
	return v.decide(ctx, nil, mr)
}

// ValidateUpdate implements admission.Validator.
func (v *MeshRouteValidator) ValidateUpdate(ctx context.Context, old, mr *meshv1alpha1.MeshRoute) (admission.Warnings, error) {
	return v.decide(ctx, old, mr)
}

// ValidateDelete implements admission.Validator.
func (v *MeshRouteValidator) ValidateDelete(context.Context, *meshv1alpha1.MeshRoute) (admission.Warnings, error) {
	return nil, nil
}

func (v *MeshRouteValidator) decide(ctx context.Context, old, mr *meshv1alpha1.MeshRoute) (admission.Warnings, error) {
	warnings, err := decide(KindMeshRoute, old, mr, old != nil, validation.MeshRoute)
	if !namesSubsets(mr) {
		return warnings, err
	}
	var policies meshv1alpha1.DestinationPolicyList
	if lerr := v.Client.List(ctx, &policies); lerr != nil {
		return append(warnings, fmt.Sprintf("subsets not checked: listing DestinationPolicies: %v", lerr)), err
	}
	return append(warnings, MissingSubsets(mr, policies.Items)...), err
}

func namesSubsets(mr *meshv1alpha1.MeshRoute) bool {
	for _, rule := range mr.Spec.HTTP {
		if rule.Mirror != nil && rule.Mirror.Subset != "" {
			return true
		}
		for _, d := range rule.Route {
			if d.Subset != "" {
				return true
			}
		}
	}
	return false
}

// Kinds named in admission errors.
const (
	KindMeshRoute          = "MeshRoute"
	KindPeerAuthentication = "PeerAuthentication"
	KindMesh               = "Mesh"
)

// ruleValidator is the validating webhook of a kind whose only checks are
// api/validation's rules and the annotation check (Mesh, PeerAuthentication).
type ruleValidator[T client.Object] struct {
	kind     string
	problems func(T) field.ErrorList
}

func (v ruleValidator[T]) ValidateCreate(_ context.Context, obj T) (admission.Warnings, error) {
	var none T
	return decide(v.kind, none, obj, false, v.problems)
}

func (v ruleValidator[T]) ValidateUpdate(_ context.Context, old, obj T) (admission.Warnings, error) {
	return decide(v.kind, old, obj, true, v.problems)
}

func (ruleValidator[T]) ValidateDelete(context.Context, T) (admission.Warnings, error) {
	return nil, nil
}

// meshProblems are a Mesh's problems: its name, then its spec.
func meshProblems(m *meshv1alpha1.Mesh) field.ErrorList {
	return append(validation.MeshName(m), validation.Mesh(m)...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
