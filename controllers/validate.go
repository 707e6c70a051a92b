package controllers

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/internal/re2"
)

// This file holds the semantic checks that CEL cannot express (or that we
// keep as a second line of defence behind it). Each is a pure function of
// one object and returns every problem it finds, each naming its field.

// headerNameRE is a lower-case HTTP header name without a pseudo-header colon.
var headerNameRE = regexp.MustCompile(`^[a-z0-9!#$%&'*+\-.^_|~]+$`)

// ValidateMeshName reports a Mesh not named "default"; Capstan reads only that one.
func ValidateMeshName(m *meshv1alpha1.Mesh) field.ErrorList {
	if m.Name == meshv1alpha1.MeshName {
		return nil
	}
	return field.ErrorList{field.Invalid(field.NewPath("metadata", "name"), m.Name,
		fmt.Sprintf("the Mesh must be named %q; this one is ignored", meshv1alpha1.MeshName))}
}

// ValidateMesh checks a Mesh's spec.
func ValidateMesh(m *meshv1alpha1.Mesh) field.ErrorList {
	return validateResources(m.Spec.Proxy.Resources, field.NewPath("spec", "proxy", "resources"))
}

// validateResources reports requests above limits, which the API server
// would refuse on every injected pod.
func validateResources(r corev1.ResourceRequirements, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, name := range sortedKeys(r.Requests) {
		limit, ok := r.Limits[name]
		if req := r.Requests[name]; ok && req.Cmp(limit) > 0 {
			errs = append(errs, field.Invalid(path.Child("requests").Key(string(name)), req.String(),
				fmt.Sprintf("must be less than or equal to the limit %s", limit.String())))
		}
	}
	return errs
}

// ValidateMeshRoute checks a MeshRoute's rules.
func ValidateMeshRoute(mr *meshv1alpha1.MeshRoute) field.ErrorList {
	var errs field.ErrorList
	names := map[string]int{}
	for i := range mr.Spec.HTTP {
		rule := &mr.Spec.HTTP[i]
		path := field.NewPath("spec", "http").Index(i)
		if first, dup := names[rule.Name]; dup && rule.Name != "" {
			errs = append(errs, field.Invalid(path.Child("name"), rule.Name,
				fmt.Sprintf("duplicates the name of spec.http[%d]", first)))
		} else {
			names[rule.Name] = i
		}
		errs = append(errs, validateHTTPRule(rule, path)...)
	}
	return append(errs, ValidateRegexes(mr)...)
}

func validateHTTPRule(rule *meshv1alpha1.HTTPRule, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if rule.Rewrite != nil && rule.Rewrite.Prefix != "" && !allPrefixPathMatches(rule.Match) {
		errs = append(errs, field.Invalid(path.Child("rewrite", "prefix"), rule.Rewrite.Prefix,
			"requires a Prefix path match"))
	}
	errs = append(errs, validateDestinations(rule.Route, path.Child("route"))...)
	if rule.Retries != nil && rule.Retries.PerTryTimeout != nil && rule.Timeout != nil &&
		rule.Timeout.Duration > 0 && rule.Retries.PerTryTimeout.Duration > rule.Timeout.Duration {
		errs = append(errs, field.Invalid(path.Child("retries", "perTryTimeout"), rule.Retries.PerTryTimeout.String(),
			fmt.Sprintf("must not exceed the rule's timeout %s, or no retry can happen", rule.Timeout.Duration)))
	}
	if rule.Headers != nil {
		errs = append(errs, validateHeaderOperations(rule.Headers.Request, path.Child("headers", "request"))...)
		errs = append(errs, validateHeaderOperations(rule.Headers.Response, path.Child("headers", "response"))...)
	}
	return errs
}

// allPrefixPathMatches says whether every match has a Prefix path match, so
// that a prefix rewrite knows which prefix it replaces.
func allPrefixPathMatches(matches []meshv1alpha1.HTTPMatch) bool {
	if len(matches) == 0 {
		return false
	}
	for _, m := range matches {
		if m.Path == nil || (m.Path.Type != meshv1alpha1.MatchPrefix && m.Path.Type != "") {
			return false
		}
	}
	return true
}

// regexField is one RegularExpression match value and its field path.
type regexField struct {
	path  *field.Path
	value string
}

// regexFields lists the regular expressions of mr's matches, in field order.
func regexFields(mr *meshv1alpha1.MeshRoute) []regexField {
	var out []regexField
	add := func(t meshv1alpha1.MatchType, value string, path *field.Path) {
		if t == meshv1alpha1.MatchRegularExpression {
			out = append(out, regexField{path, value})
		}
	}
	for i := range mr.Spec.HTTP {
		for j := range mr.Spec.HTTP[i].Match {
			m := &mr.Spec.HTTP[i].Match[j]
			path := field.NewPath("spec", "http").Index(i).Child("match").Index(j)
			if m.Path != nil {
				add(m.Path.Type, m.Path.Value, path.Child("path", "value"))
			}
			for k, h := range m.Headers {
				add(h.Type, h.Value, path.Child("headers").Index(k).Child("value"))
			}
			for k, q := range m.QueryParams {
				add(q.Type, q.Value, path.Child("queryParams").Index(k).Child("value"))
			}
		}
	}
	return out
}

// ValidateRegexes checks mr's regular expressions with Envoy's rule
// (internal/re2): the total size first, so that an oversized object is
// refused before anything is parsed, then each pattern, naming its field
// and, when it is too large, its RE2 program size and the limit.
func ValidateRegexes(mr *meshv1alpha1.MeshRoute) field.ErrorList {
	fields := regexFields(mr)
	total := 0
	for _, f := range fields {
		total += len(f.value)
	}
	if total > re2.MaxTotalBytes {
		return field.ErrorList{field.Invalid(field.NewPath("spec", "http"), fmt.Sprintf("%d bytes of regular expressions", total),
			fmt.Sprintf("the regular expressions total %d bytes; one MeshRoute may have at most %d", total, re2.MaxTotalBytes))}
	}
	var errs field.ErrorList
	for _, f := range fields {
		if err := re2.Check(f.value); err != nil {
			errs = append(errs, field.Invalid(f.path, f.value, err.Error()))
		}
	}
	return errs
}

// validateDestinations reports a destination listed twice in one rule.
func validateDestinations(route []meshv1alpha1.Destination, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]int{}
	for i, d := range route {
		key := d.Host + "/" + d.Subset + "/" + strconv.Itoa(int(d.Port))
		if first, dup := seen[key]; dup {
			errs = append(errs, field.Invalid(path.Index(i), d.Host,
				fmt.Sprintf("the same destination as route[%d]; merge their weights", first)))
			continue
		}
		seen[key] = i
	}
	return errs
}

// validateHeaderOperations refuses header edits that Envoy rejects: pseudo
// headers and Host cannot be set, added or removed.
func validateHeaderOperations(ops *meshv1alpha1.HeaderOperations, path *field.Path) field.ErrorList {
	if ops == nil {
		return nil
	}
	var errs field.ErrorList
	for _, name := range sortedKeys(ops.Set) {
		errs = append(errs, validateEditableHeader(name, path.Child("set").Key(name))...)
	}
	for _, name := range sortedKeys(ops.Add) {
		errs = append(errs, validateEditableHeader(name, path.Child("add").Key(name))...)
	}
	for i, name := range ops.Remove {
		errs = append(errs, validateEditableHeader(name, path.Child("remove").Index(i))...)
	}
	return errs
}

func validateEditableHeader(name string, path *field.Path) field.ErrorList {
	switch {
	case name == "host":
		return field.ErrorList{field.Invalid(path, name, "the host header cannot be edited; use rewrite.authority")}
	case !headerNameRE.MatchString(name):
		return field.ErrorList{field.Invalid(path, name, "must be a lower-case HTTP header name (pseudo-headers cannot be edited)")}
	}
	return nil
}

// ValidateDestinationPolicy checks a DestinationPolicy: subset labels, the
// consistent-hash header and outlier detection that could eject every endpoint.
func ValidateDestinationPolicy(dp *meshv1alpha1.DestinationPolicy) field.ErrorList {
	allowAggressive := dp.Annotations[meshv1alpha1.AnnotationAllowAggressiveEjection] == "true"
	spec := field.NewPath("spec")
	errs := validateTrafficPolicy(dp.Spec.TrafficPolicy, spec.Child("trafficPolicy"), allowAggressive)
	for i := range dp.Spec.Subsets {
		s := &dp.Spec.Subsets[i]
		path := spec.Child("subsets").Index(i)
		errs = append(errs, validateLabels(s.Labels, path.Child("labels"))...)
		errs = append(errs, validateTrafficPolicy(s.TrafficPolicy, path.Child("trafficPolicy"), allowAggressive)...)
	}
	return errs
}

func validateTrafficPolicy(tp *meshv1alpha1.TrafficPolicy, path *field.Path, allowAggressive bool) field.ErrorList {
	if tp == nil {
		return nil
	}
	var errs field.ErrorList
	if lb := tp.LoadBalancer; lb != nil && lb.ConsistentHash != nil && lb.ConsistentHash.HTTPHeaderName != "" &&
		!headerNameRE.MatchString(lb.ConsistentHash.HTTPHeaderName) {
		errs = append(errs, field.Invalid(path.Child("loadBalancer", "consistentHash", "httpHeaderName"),
			lb.ConsistentHash.HTTPHeaderName, "must be a lower-case HTTP header name"))
	}
	if od := tp.OutlierDetection; od != nil && !allowAggressive && ejectsEverything(od) {
		errs = append(errs, field.Invalid(path.Child("outlierDetection", "maxEjectionPercent"), *od.MaxEjectionPercent,
			fmt.Sprintf("with minHealthPercent 0 this can eject every endpoint under load; "+
				"keep maxEjectionPercent below 100, or annotate the policy %s: \"true\"",
				meshv1alpha1.AnnotationAllowAggressiveEjection)))
	}
	return errs
}

// ejectsEverything says whether outlier detection may eject the whole pool
// with no panic threshold to fall back on.
func ejectsEverything(od *meshv1alpha1.OutlierDetection) bool {
	return od.MaxEjectionPercent != nil && *od.MaxEjectionPercent >= 100 &&
		od.MinHealthPercent != nil && *od.MinHealthPercent == 0
}

// ValidatePeerAuthentication checks a PeerAuthentication's selector.
func ValidatePeerAuthentication(pa *meshv1alpha1.PeerAuthentication) field.ErrorList {
	if pa.Spec.Selector == nil {
		return nil
	}
	return validateLabels(pa.Spec.Selector.MatchLabels, field.NewPath("spec", "selector", "matchLabels"))
}

// validateLabels checks label keys and values as the API server checks them on pods.
func validateLabels(labels map[string]string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, k := range sortedKeys(labels) {
		if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
			errs = append(errs, field.Invalid(path.Key(k), k, "invalid label key: "+msgs[0]))
		}
		if msgs := validation.IsValidLabelValue(labels[k]); len(msgs) > 0 {
			errs = append(errs, field.Invalid(path.Key(k), labels[k], "invalid label value: "+msgs[0]))
		}
	}
	return errs
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
