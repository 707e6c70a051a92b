package olm

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/blang/semver/v4"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/utils/ptr"
)

// latestRelease returns the directory of the newest release under
// hack/released (one directory per version, holding its CRDs).
func latestRelease(t *testing.T) (string, string) {
	t.Helper()
	dir := filepath.Join(root(t), "hack", "released")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var versions []semver.Version
	for _, e := range entries {
		if v, err := semver.Parse(e.Name()); err == nil && e.IsDir() {
			versions = append(versions, v)
		}
	}
	if len(versions) == 0 {
		t.Fatalf("no release under %s", dir)
	}
	slices.SortFunc(versions, func(a, b semver.Version) int { return a.Compare(b) })
	latest := versions[len(versions)-1].String()
	return latest, filepath.Join(dir, latest)
}

// TestCRDsUpgradeFromRelease compares the CRDs this tree ships with those of
// the last release: a change that breaks stored objects or that OLM v1
// refuses on upgrade fails it (see docs/install.md, "Upgrades").
func TestCRDsUpgradeFromRelease(t *testing.T) {
	version, dir := latestRelease(t)
	released, err := ReadCRDs(dir)
	if err != nil {
		t.Fatal(err)
	}
	current, err := ReadCRDs(filepath.Join(root(t), "config", "crd", "bases"))
	if err != nil {
		t.Fatal(err)
	}
	if len(released) == 0 {
		t.Fatalf("release %s has no CRD", version)
	}
	for name, old := range released {
		cur, ok := current[name]
		if !ok {
			t.Errorf("CRD %s of release %s is gone", name, version)
			continue
		}
		for _, p := range CompareCRDs(old, cur) {
			t.Errorf("unsafe upgrade from %s: %s", version, p)
		}
	}
}

func testCRD() *apiextensionsv1.CustomResourceDefinition {
	props := map[string]apiextensionsv1.JSONSchemaProps{
		"mode":    {Type: "string", Enum: []apiextensionsv1.JSON{{Raw: []byte(`"A"`)}, {Raw: []byte(`"B"`)}}},
		"count":   {Type: "integer", Maximum: ptr.To(10.0), Default: &apiextensionsv1.JSON{Raw: []byte(`3`)}},
		"name":    {Type: "string", MaxLength: ptr.To[int64](63)},
		"hosts":   {Type: "array", XListType: ptr.To("set"), Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &apiextensionsv1.JSONSchemaProps{Type: "string"}}},
		"comment": {Type: "string"},
	}
	return &apiextensionsv1.CustomResourceDefinition{
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"spec": {Type: "object", Properties: props},
					}}}}},
		},
	}
}

// TestCompareCRDs runs the checker on deliberate changes: each unsafe one
// is reported at its field, each safe one is not.
func TestCompareCRDs(t *testing.T) {
	spec := func(c *apiextensionsv1.CustomResourceDefinition) map[string]apiextensionsv1.JSONSchemaProps {
		return c.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties
	}
	set := func(c *apiextensionsv1.CustomResourceDefinition, field string, edit func(*apiextensionsv1.JSONSchemaProps)) {
		p := spec(c)[field]
		edit(&p)
		spec(c)[field] = p
	}
	for _, tc := range []struct {
		name, want string // want "" for a safe change
		edit       func(*apiextensionsv1.CustomResourceDefinition)
	}{
		{"field removed", ".spec.comment: field removed", func(c *apiextensionsv1.CustomResourceDefinition) { delete(spec(c), "comment") }},
		{"type changed", ".spec.name: type changed", func(c *apiextensionsv1.CustomResourceDefinition) {
			set(c, "name", func(p *apiextensionsv1.JSONSchemaProps) { p.Type = "integer" })
		}},
		{"default changed", ".spec.count: default changed", func(c *apiextensionsv1.CustomResourceDefinition) {
			set(c, "count", func(p *apiextensionsv1.JSONSchemaProps) { p.Default = &apiextensionsv1.JSON{Raw: []byte(`4`)} })
		}},
		{"default added", ".spec.name: default", func(c *apiextensionsv1.CustomResourceDefinition) {
			set(c, "name", func(p *apiextensionsv1.JSONSchemaProps) { p.Default = &apiextensionsv1.JSON{Raw: []byte(`"x"`)} })
		}},
		{"enum value removed", `.spec.mode: enum value "B" removed`, func(c *apiextensionsv1.CustomResourceDefinition) {
			set(c, "mode", func(p *apiextensionsv1.JSONSchemaProps) { p.Enum = p.Enum[:1] })
		}},
		{"enum added", ".spec.comment: enum added", func(c *apiextensionsv1.CustomResourceDefinition) {
			set(c, "comment", func(p *apiextensionsv1.JSONSchemaProps) { p.Enum = []apiextensionsv1.JSON{{Raw: []byte(`"x"`)}} })
		}},
		{"maximum lowered", ".spec.count: maximum", func(c *apiextensionsv1.CustomResourceDefinition) {
			set(c, "count", func(p *apiextensionsv1.JSONSchemaProps) { p.Maximum = ptr.To(5.0) })
		}},
		{"maxLength lowered", ".spec.name: maxLength", func(c *apiextensionsv1.CustomResourceDefinition) {
			set(c, "name", func(p *apiextensionsv1.JSONSchemaProps) { p.MaxLength = ptr.To[int64](10) })
		}},
		{"minimum added", ".spec.count: minimum", func(c *apiextensionsv1.CustomResourceDefinition) {
			set(c, "count", func(p *apiextensionsv1.JSONSchemaProps) { p.Minimum = ptr.To(1.0) })
		}},
		{"new required field", ".spec: new required field comment", func(c *apiextensionsv1.CustomResourceDefinition) {
			p := c.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
			p.Required = []string{"comment"}
			c.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"] = p
		}},
		{"list type changed", ".spec.hosts: list type", func(c *apiextensionsv1.CustomResourceDefinition) {
			set(c, "hosts", func(p *apiextensionsv1.JSONSchemaProps) { p.XListType = ptr.To("atomic") })
		}},
		{"item type changed", ".spec.hosts[]: type changed", func(c *apiextensionsv1.CustomResourceDefinition) {
			set(c, "hosts", func(p *apiextensionsv1.JSONSchemaProps) { p.Items.Schema.Type = "integer" })
		}},
		{"scope changed", "scope changed", func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Scope = apiextensionsv1.ClusterScoped }},
		{"version removed", "version v1 removed", func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Versions[0].Name = "v2" }},
		{"optional field added", "", func(c *apiextensionsv1.CustomResourceDefinition) {
			spec(c)["extra"] = apiextensionsv1.JSONSchemaProps{Type: "string"}
		}},
		{"description changed", "", func(c *apiextensionsv1.CustomResourceDefinition) {
			set(c, "name", func(p *apiextensionsv1.JSONSchemaProps) { p.Description = "the name" })
		}},
		{"maximum raised", "", func(c *apiextensionsv1.CustomResourceDefinition) {
			set(c, "count", func(p *apiextensionsv1.JSONSchemaProps) { p.Maximum = ptr.To(20.0) })
		}},
		{"enum value added", "", func(c *apiextensionsv1.CustomResourceDefinition) {
			set(c, "mode", func(p *apiextensionsv1.JSONSchemaProps) {
				p.Enum = append(p.Enum, apiextensionsv1.JSON{Raw: []byte(`"C"`)})
			})
		}},
		{"version added", "", func(c *apiextensionsv1.CustomResourceDefinition) {
			v := *c.Spec.Versions[0].DeepCopy()
			v.Name, v.Storage = "v2", false
			c.Spec.Versions = append(c.Spec.Versions, v)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur := testCRD()
			tc.edit(cur)
			problems := CompareCRDs(testCRD(), cur)
			switch {
			case tc.want == "" && len(problems) > 0:
				t.Errorf("a safe change reported: %v", problems)
			case tc.want != "" && (len(problems) != 1 || !strings.Contains(problems[0], tc.want)):
				t.Errorf("problems %v, want one with %q", problems, tc.want)
			}
		})
	}
}
