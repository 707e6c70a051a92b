// Package install reads the rendered install manifests (dist/install.yaml,
// the kustomize overlays under config/) and applies them to a test's API
// server the way `kubectl apply --server-side` does. Its tests hold the
// rendered objects to what the operator needs: webhooks pointing at the
// manager, Services at its ports, a Deployment the restricted Pod Security
// Standard admits.
package install

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// FieldOwner is the field manager of Apply, as `kubectl apply --server-side
// --field-manager` would set it.
const FieldOwner = "capstan-install-test"

// Manifest is a multi-document YAML stream, in order.
type Manifest []*unstructured.Unstructured

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// Parse splits data into objects, skipping empty documents.
func Parse(data []byte) (Manifest, error) {
	var m Manifest
	for i, doc := range docSeparator.Split(string(data), -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		obj := map[string]any{}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(obj) == 0 {
			continue
		}
		m = append(m, &unstructured.Unstructured{Object: obj})
	}
	return m, nil
}

// ReadFile parses the manifest at path.
func ReadFile(path string) (Manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the manifest: %w", err)
	}
	return Parse(data)
}

// Installer reads dist/install.yaml under the repository root.
func Installer(root string) (Manifest, error) {
	return ReadFile(filepath.Join(root, "dist", "install.yaml"))
}

// Kustomize renders the kustomization in dir with the kubectl in assets
// (its embedded kustomize) and parses the result.
func Kustomize(kubectl, dir string) (Manifest, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(kubectl, "kustomize", dir)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("kubectl kustomize %s: %w: %s", dir, err, stderr.String())
	}
	return Parse(stdout.Bytes())
}

// Find returns the objects of kind, optionally only the one named name.
func (m Manifest) Find(kind, name string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range m {
		if o.GetKind() == kind && (name == "" || o.GetName() == name) {
			out = append(out, o)
		}
	}
	return out
}

// Into converts the one object of kind and name into a typed object.
func (m Manifest) Into(kind, name string, into any) error {
	found := m.Find(kind, name)
	if len(found) != 1 {
		return fmt.Errorf("%d objects %s %s in the manifest, want 1", len(found), kind, name)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(found[0].Object, into, true); err != nil {
		return fmt.Errorf("converting %s %s: %w", kind, name, err)
	}
	return nil
}

// Apply applies every object with server-side apply, in the manifest's order
// (kustomize puts Namespaces and CRDs first), forcing conflicts as a fresh
// `kubectl apply --server-side --force-conflicts` would.
func Apply(ctx context.Context, c client.Client, m Manifest) error {
	for _, o := range m {
		obj := o.DeepCopy()
		ac := client.ApplyConfigurationFromUnstructured(obj)
		if err := c.Apply(ctx, ac, client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
			return fmt.Errorf("applying %s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
	return nil
}
