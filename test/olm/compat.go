package olm

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// CompareCRDs reports the changes from old to new that can break objects
// stored under old, or that OLM v1 refuses when it upgrades a CRD: a changed
// scope, a removed version, and per field a removal, a type change, a
// default added, removed or changed, a new required field, an enum added or
// narrowed, a bound added or tightened, a pattern added or changed, a
// nullable, list or map type or unknown-field setting made stricter.
// Descriptions, new optional fields, relaxed bounds and new versions pass.
func CompareCRDs(old, cur *apiextensionsv1.CustomResourceDefinition) []string {
	var problems []string
	if old.Spec.Scope != cur.Spec.Scope {
		problems = append(problems, fmt.Sprintf("%s: scope changed from %s to %s", old.Name, old.Spec.Scope, cur.Spec.Scope))
	}
	for _, ov := range old.Spec.Versions {
		i := slices.IndexFunc(cur.Spec.Versions, func(v apiextensionsv1.CustomResourceDefinitionVersion) bool { return v.Name == ov.Name })
		if i < 0 {
			problems = append(problems, fmt.Sprintf("%s: version %s removed (objects may be stored in it)", old.Name, ov.Name))
			continue
		}
		nv := cur.Spec.Versions[i]
		if ov.Served && !nv.Served {
			problems = append(problems, fmt.Sprintf("%s: version %s no longer served", old.Name, ov.Name))
		}
		if ov.Schema == nil || nv.Schema == nil {
			continue
		}
		c := schemaComparison{prefix: old.Name + " " + ov.Name}
		c.compare("", ov.Schema.OpenAPIV3Schema, nv.Schema.OpenAPIV3Schema)
		problems = append(problems, c.problems...)
	}
	return problems
}

type schemaComparison struct {
	prefix   string
	problems []string
}

func (c *schemaComparison) addf(path, format string, args ...any) {
	if path == "" {
		path = "."
	}
	c.problems = append(c.problems, c.prefix+" "+path+": "+fmt.Sprintf(format, args...))
}

func (c *schemaComparison) compare(path string, o, n *apiextensionsv1.JSONSchemaProps) {
	if o == nil || n == nil {
		if o != nil {
			c.addf(path, "schema removed")
		}
		return
	}
	if o.Type != n.Type {
		c.addf(path, "type changed from %q to %q", o.Type, n.Type)
		return
	}
	c.compareDefault(path, o, n)
	c.compareEnum(path, o, n)
	c.compareBounds(path, o, n)
	c.compareKubernetesExtensions(path, o, n)
	for _, r := range n.Required {
		if !slices.Contains(o.Required, r) {
			c.addf(path, "new required field %s", r)
		}
	}
	for _, name := range sortedKeys(o.Properties) {
		op := o.Properties[name]
		np, ok := n.Properties[name]
		if !ok {
			c.addf(path+"."+name, "field removed")
			continue
		}
		c.compare(path+"."+name, &op, &np)
	}
	if o.Items != nil && o.Items.Schema != nil {
		var ni *apiextensionsv1.JSONSchemaProps
		if n.Items != nil {
			ni = n.Items.Schema
		}
		c.compare(path+"[]", o.Items.Schema, ni)
	}
	if o.AdditionalProperties != nil && o.AdditionalProperties.Schema != nil {
		var na *apiextensionsv1.JSONSchemaProps
		if n.AdditionalProperties != nil {
			na = n.AdditionalProperties.Schema
		}
		c.compare(path+"{}", o.AdditionalProperties.Schema, na)
	}
}

func (c *schemaComparison) compareDefault(path string, o, n *apiextensionsv1.JSONSchemaProps) {
	switch {
	case o.Default == nil && n.Default != nil:
		c.addf(path, "default %s added", n.Default.Raw)
	case o.Default != nil && n.Default == nil:
		c.addf(path, "default %s removed", o.Default.Raw)
	case o.Default != nil && !bytes.Equal(o.Default.Raw, n.Default.Raw):
		c.addf(path, "default changed from %s to %s", o.Default.Raw, n.Default.Raw)
	}
}

func (c *schemaComparison) compareEnum(path string, o, n *apiextensionsv1.JSONSchemaProps) {
	if len(n.Enum) == 0 {
		return
	}
	if len(o.Enum) == 0 {
		c.addf(path, "enum added")
		return
	}
	for _, v := range o.Enum {
		if !slices.ContainsFunc(n.Enum, func(w apiextensionsv1.JSON) bool { return bytes.Equal(v.Raw, w.Raw) }) {
			c.addf(path, "enum value %s removed", v.Raw)
		}
	}
}

// compareBounds: a new or tighter bound refuses values the old schema took.
func (c *schemaComparison) compareBounds(path string, o, n *apiextensionsv1.JSONSchemaProps) {
	tighterMax := func(name string, ov, nv *float64) {
		if nv != nil && (ov == nil || *nv < *ov) {
			c.addf(path, "%s added or lowered to %v", name, *nv)
		}
	}
	tighterMin := func(name string, ov, nv *float64) {
		if nv != nil && (ov == nil || *nv > *ov) {
			c.addf(path, "%s added or raised to %v", name, *nv)
		}
	}
	tighterMax("maximum", o.Maximum, n.Maximum)
	tighterMin("minimum", o.Minimum, n.Minimum)
	tighterMax("maxLength", toFloat(o.MaxLength), toFloat(n.MaxLength))
	tighterMin("minLength", toFloat(o.MinLength), toFloat(n.MinLength))
	tighterMax("maxItems", toFloat(o.MaxItems), toFloat(n.MaxItems))
	tighterMin("minItems", toFloat(o.MinItems), toFloat(n.MinItems))
	tighterMax("maxProperties", toFloat(o.MaxProperties), toFloat(n.MaxProperties))
	tighterMin("minProperties", toFloat(o.MinProperties), toFloat(n.MinProperties))
	if !o.ExclusiveMaximum && n.ExclusiveMaximum || !o.ExclusiveMinimum && n.ExclusiveMinimum {
		c.addf(path, "bound made exclusive")
	}
	if n.Pattern != "" && n.Pattern != o.Pattern {
		c.addf(path, "pattern changed from %q to %q", o.Pattern, n.Pattern)
	}
	if n.Format != o.Format && n.Format != "" {
		c.addf(path, "format changed from %q to %q", o.Format, n.Format)
	}
}

func (c *schemaComparison) compareKubernetesExtensions(path string, o, n *apiextensionsv1.JSONSchemaProps) {
	if o.Nullable && !n.Nullable {
		c.addf(path, "no longer nullable")
	}
	if o.XPreserveUnknownFields != nil && *o.XPreserveUnknownFields && (n.XPreserveUnknownFields == nil || !*n.XPreserveUnknownFields) {
		c.addf(path, "unknown fields no longer preserved")
	}
	if ptrString(o.XListType) != ptrString(n.XListType) {
		c.addf(path, "list type changed from %q to %q", ptrString(o.XListType), ptrString(n.XListType))
	}
	if !slices.Equal(o.XListMapKeys, n.XListMapKeys) {
		c.addf(path, "list map keys changed from %v to %v", o.XListMapKeys, n.XListMapKeys)
	}
	if ptrString(o.XMapType) != ptrString(n.XMapType) {
		c.addf(path, "map type changed from %q to %q", ptrString(o.XMapType), ptrString(n.XMapType))
	}
}

func toFloat(p *int64) *float64 {
	if p == nil {
		return nil
	}
	f := float64(*p)
	return &f
}

func ptrString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func sortedKeys(m map[string]apiextensionsv1.JSONSchemaProps) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ReadCRDs reads every CRD in the YAML files of dir, by name.
func ReadCRDs(dir string) (map[string]*apiextensionsv1.CustomResourceDefinition, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	out := map[string]*apiextensionsv1.CustomResourceDefinition{}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", e.Name(), err)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(data, crd); err != nil {
			return nil, fmt.Errorf("parsing %s: %w", e.Name(), err)
		}
		if crd.Kind == "CustomResourceDefinition" {
			out[crd.Name] = crd
		}
	}
	return out, nil
}
