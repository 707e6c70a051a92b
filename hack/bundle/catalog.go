package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// writeCatalog renders catalog/capstan/catalog.yaml, a file-based catalog
// of the bundle in bundle/: the package, the stable channel with its
// upgrade edge (skipRange: every older version upgrades to this one), and
// the bundle with the properties `opm render` gives a bundle image.
func writeCatalog(o options) error {
	if o.version == "" || o.bundleImg == "" {
		return fmt.Errorf("-version and -bundle-image are required")
	}
	dir := filepath.Join(o.root, "bundle", "manifests")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading the bundle: %w", err)
	}
	b := fbcBundle{Schema: "olm.bundle", Name: packageName + ".v" + o.version, Package: packageName, Image: o.bundleImg}
	b.add("olm.package", map[string]string{"packageName": packageName, "version": o.version})
	var csv operatorsv1alpha1.ClusterServiceVersion
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return fmt.Errorf("reading %s: %w", e.Name(), err)
		}
		if err := b.addManifest(e.Name(), data, &csv); err != nil {
			return err
		}
	}
	if csv.Name != b.Name {
		return fmt.Errorf("bundle/manifests holds CSV %q, want %s: run make bundle", csv.Name, b.Name)
	}
	b.add("olm.csv.metadata", csvMetadata(&csv))
	b.RelatedImages = append(b.RelatedImages, relatedImage{Image: o.bundleImg})
	for _, ri := range csv.Spec.RelatedImages {
		b.RelatedImages = append(b.RelatedImages, relatedImage{Name: ri.Name, Image: ri.Image})
	}
	return writeFBC(filepath.Join(o.root, "catalog", packageName, "catalog.yaml"), o.version, &csv, b)
}

type property struct {
	Type  string `json:"type"`
	Value any    `json:"value"`
}

type relatedImage struct {
	Name  string `json:"name"`
	Image string `json:"image"`
}

type fbcBundle struct {
	Schema        string         `json:"schema"`
	Name          string         `json:"name"`
	Package       string         `json:"package"`
	Image         string         `json:"image"`
	Properties    []property     `json:"properties"`
	RelatedImages []relatedImage `json:"relatedImages"`
}

func (b *fbcBundle) add(typ string, value any) {
	b.Properties = append(b.Properties, property{Type: typ, Value: value})
}

// addManifest records one bundle file: an olm.bundle.object property, an
// olm.gvk property per served version of a CRD, and the CSV itself.
func (b *fbcBundle) addManifest(name string, data []byte, csv *operatorsv1alpha1.ClusterServiceVersion) error {
	obj := map[string]any{}
	if err := yaml.Unmarshal(data, &obj); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	compact, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	b.add("olm.bundle.object", map[string]string{"data": base64.StdEncoding.EncodeToString(compact)})
	switch obj["kind"] {
	case "ClusterServiceVersion":
		if err := yaml.Unmarshal(data, csv); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	case "CustomResourceDefinition":
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(data, &crd); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		for _, v := range crd.Spec.Versions {
			if v.Served {
				b.add("olm.gvk", map[string]string{"group": crd.Spec.Group, "kind": crd.Spec.Names.Kind, "version": v.Name})
			}
		}
	}
	return nil
}

// csvMetadata is the olm.csv.metadata property: what catalogs show
// without unpacking the bundle.
func csvMetadata(csv *operatorsv1alpha1.ClusterServiceVersion) map[string]any {
	annotations := map[string]string{}
	for k, v := range csv.Annotations {
		annotations[k] = v
	}
	return map[string]any{
		"annotations": annotations, "crdDescriptions": csv.Spec.CustomResourceDefinitions,
		"description": csv.Spec.Description, "displayName": csv.Spec.DisplayName, "installModes": csv.Spec.InstallModes,
		"keywords": csv.Spec.Keywords, "links": csv.Spec.Links, "maintainers": csv.Spec.Maintainers,
		"maturity": csv.Spec.Maturity, "minKubeVersion": csv.Spec.MinKubeVersion, "provider": csv.Spec.Provider,
		"apiServiceDefinitions": csv.Spec.APIServiceDefinitions, "nativeAPIs": csv.Spec.NativeAPIs,
	}
}

func writeFBC(path, version string, csv *operatorsv1alpha1.ClusterServiceVersion, b fbcBundle) error {
	pkg := map[string]any{
		"schema": "olm.package", "name": packageName, "defaultChannel": channel,
		"description": firstParagraph(csv.Spec.Description),
	}
	if len(csv.Spec.Icon) > 0 {
		pkg["icon"] = map[string]string{"base64data": csv.Spec.Icon[0].Data, "mediatype": csv.Spec.Icon[0].MediaType}
	}
	ch := map[string]any{
		"schema": "olm.channel", "package": packageName, "name": channel,
		"entries": []map[string]string{{"name": b.Name, "skipRange": "<" + version}},
	}
	var out strings.Builder
	out.WriteString("# Capstan's file-based catalog, generated by `make catalog` (hack/bundle): do not edit.\n")
	for i, doc := range []any{pkg, ch, b} {
		data, err := yaml.Marshal(doc)
		if err != nil {
			return fmt.Errorf("encoding the catalog: %w", err)
		}
		if i > 0 {
			out.WriteString("---\n")
		}
		out.Write(data)
	}
	return writeFile(path, []byte(out.String()))
}

func firstParagraph(s string) string {
	p, _, _ := strings.Cut(strings.TrimSpace(s), "\n\n")
	return strings.Join(slices.Collect(func(yield func(string) bool) {
		for _, l := range strings.Split(p, "\n") {
			if !yield(strings.TrimSpace(l)) {
				return
			}
		}
	}), " ")
}
