package handler

import (
	"context"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/controllers"
	"github.com/capstanmesh/capstan/xds/ir"
)

// AnnotationPrefix is the prefix of Capstan's annotations.
const AnnotationPrefix = "capstan.dev/"

// MinConsecutive5xxErrors is the lowest consecutive5xxErrors (other than 0,
// which turns the check off) admitted without the allow-aggressive-ejection
// annotation.
const MinConsecutive5xxErrors = 3

// MaxEjectionPercentWithoutPanic is the highest maxEjectionPercent admitted
// with minHealthPercent 0 without the allow-aggressive-ejection annotation.
const MaxEjectionPercentWithoutPanic = 50

// KnownAnnotations are the capstan.dev/ annotations Capstan reads or writes
// (api/v1alpha1/wellknown.go).
var KnownAnnotations = []string{
	meshv1alpha1.AnnotationAllowAggressiveEjection,
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

// AggressiveEjection reports the outlier detection settings of dp (its
// traffic policy and each subset's) that can eject the whole pool:
// consecutive5xxErrors below 3 (but not 0, which turns the check off), and
// maxEjectionPercent above 50 with minHealthPercent 0. Unset fields take the
// CRD defaults (5, 50, 50) and are never aggressive.
func AggressiveEjection(dp *meshv1alpha1.DestinationPolicy) field.ErrorList {
	spec := field.NewPath("spec")
	errs := aggressiveEjection(dp.Spec.TrafficPolicy, spec.Child("trafficPolicy"))
	for i := range dp.Spec.Subsets {
		errs = append(errs, aggressiveEjection(dp.Spec.Subsets[i].TrafficPolicy, spec.Child("subsets").Index(i).Child("trafficPolicy"))...)
	}
	return errs
}

func aggressiveEjection(tp *meshv1alpha1.TrafficPolicy, path *field.Path) field.ErrorList {
	if tp == nil || tp.OutlierDetection == nil {
		return nil
	}
	od, path := tp.OutlierDetection, path.Child("outlierDetection")
	var errs field.ErrorList
	if n := od.Consecutive5xxErrors; n != nil && *n > 0 && *n < MinConsecutive5xxErrors {
		errs = append(errs, field.Invalid(path.Child("consecutive5xxErrors"), *n, fmt.Sprintf(
			"below %d: endpoints are ejected after %d error(s) in a row, so a short burst of errors can eject the whole pool and fail every request",
			MinConsecutive5xxErrors, *n)))
	}
	if m, h := od.MaxEjectionPercent, od.MinHealthPercent; m != nil && *m > MaxEjectionPercentWithoutPanic && h != nil && *h == 0 {
		errs = append(errs, field.Invalid(path.Child("maxEjectionPercent"), *m, fmt.Sprintf(
			"above %d with minHealthPercent 0: outlier detection can eject the whole pool, with no panic threshold to send traffic to every endpoint",
			MaxEjectionPercentWithoutPanic)))
	}
	return errs
}

// DecideDestinationPolicy is the validating webhook's decision for dp (old
// is the stored object on an update, nil on a creation): aggressive outlier
// detection is refused, or admitted with a warning when dp has
// capstan.dev/allow-aggressive-ejection: "true" or when the field keeps the
// value old already had (so that objects stored before this check, or
// before the annotation was removed, can still be labelled or edited
// elsewhere); unknown capstan.dev/ annotations are warned about.
func DecideDestinationPolicy(old, dp *meshv1alpha1.DestinationPolicy) (admission.Warnings, error) {
	warnings := UnknownAnnotations(dp.Annotations)
	allowed := dp.Annotations[meshv1alpha1.AnnotationAllowAggressiveEjection] == "true"
	stored := map[string]bool{}
	if old != nil {
		for _, e := range AggressiveEjection(old) {
			stored[fmt.Sprintf("%s=%v", e.Field, e.BadValue)] = true
		}
	}
	var refused field.ErrorList
	for _, e := range AggressiveEjection(dp) {
		switch {
		case allowed:
			warnings = append(warnings, fmt.Sprintf("%s: %v can eject the whole pool; admitted because of %s: \"true\"",
				e.Field, e.BadValue, meshv1alpha1.AnnotationAllowAggressiveEjection))
		case stored[fmt.Sprintf("%s=%v", e.Field, e.BadValue)]:
			warnings = append(warnings, fmt.Sprintf("%s: %v can eject the whole pool; admitted because it is unchanged, but a new value would be refused without %s: \"true\"",
				e.Field, e.BadValue, meshv1alpha1.AnnotationAllowAggressiveEjection))
		default:
			e.Detail += fmt.Sprintf(`; to accept that, annotate the object %s: "true"`, meshv1alpha1.AnnotationAllowAggressiveEjection)
			refused = append(refused, e)
		}
	}
	if len(refused) == 0 {
		return warnings, nil
	}
	return warnings, apierrors.NewInvalid(meshv1alpha1.GroupVersion.WithKind("DestinationPolicy").GroupKind(), dp.Name, refused)
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

// MeshRouteValidator is the MeshRoute validating webhook: it refuses
// regular expressions Envoy would refuse (controllers.ValidateRegexes) and
// warns about unknown subsets and annotations.
type MeshRouteValidator struct {
	// Client lists DestinationPolicies (the manager's cached client).
	Client client.Reader
}

// ValidateCreate implements admission.Validator.
func (v *MeshRouteValidator) ValidateCreate(ctx context.Context, mr *meshv1alpha1.MeshRoute) (admission.Warnings, error) {
	return v.decide(ctx, mr), RefusedRegexes(nil, mr)
}

// ValidateUpdate implements admission.Validator.
func (v *MeshRouteValidator) ValidateUpdate(ctx context.Context, old, mr *meshv1alpha1.MeshRoute) (admission.Warnings, error) {
	return v.decide(ctx, mr), RefusedRegexes(old, mr)
}

// RefusedRegexes is the webhook's refusal of mr's regular expressions, nil
// when they are all accepted. On an update (old not nil) a problem that the
// stored object already had at the same field is not refused, so that an
// object stored before this check can still be edited elsewhere; the status
// controller reports it.
func RefusedRegexes(old, mr *meshv1alpha1.MeshRoute) error {
	stored := map[string]bool{}
	if old != nil {
		for _, e := range controllers.ValidateRegexes(old) {
			stored[e.Error()] = true
		}
	}
	var refused field.ErrorList
	for _, e := range controllers.ValidateRegexes(mr) {
		if !stored[e.Error()] {
			refused = append(refused, e)
		}
	}
	if len(refused) == 0 {
		return nil
	}
	return apierrors.NewInvalid(meshv1alpha1.GroupVersion.WithKind("MeshRoute").GroupKind(), mr.Name, refused)
}

// ValidateDelete implements admission.Validator.
func (v *MeshRouteValidator) ValidateDelete(context.Context, *meshv1alpha1.MeshRoute) (admission.Warnings, error) {
	return nil, nil
}

func (v *MeshRouteValidator) decide(ctx context.Context, mr *meshv1alpha1.MeshRoute) admission.Warnings {
	warnings := UnknownAnnotations(mr.Annotations)
	if !namesSubsets(mr) {
		return warnings
	}
	var policies meshv1alpha1.DestinationPolicyList
	if err := v.Client.List(ctx, &policies); err != nil {
		return append(warnings, fmt.Sprintf("subsets not checked: listing DestinationPolicies: %v", err))
	}
	return append(warnings, MissingSubsets(mr, policies.Items)...)
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

// annotationValidator warns about unknown capstan.dev/ annotations (Mesh, PeerAuthentication).
type annotationValidator[T client.Object] struct{}

func (annotationValidator[T]) ValidateCreate(_ context.Context, obj T) (admission.Warnings, error) {
	return UnknownAnnotations(obj.GetAnnotations()), nil
}

func (annotationValidator[T]) ValidateUpdate(_ context.Context, _, obj T) (admission.Warnings, error) {
	return UnknownAnnotations(obj.GetAnnotations()), nil
}

func (annotationValidator[T]) ValidateDelete(context.Context, T) (admission.Warnings, error) {
	return nil, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
