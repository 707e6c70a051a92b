package integration

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/test/envtest"
)

// settle is how long a test waits for the API server or a reconciler.
const settle = 20 * time.Second

// fromYAML builds an object of the given kind from a spec written in YAML.
func fromYAML(t *testing.T, kind, namespace, name, spec string) *unstructured.Unstructured {
	t.Helper()
	var specMap map[string]any
	if err := yaml.Unmarshal([]byte(spec), &specMap); err != nil {
		t.Fatalf("test case spec is not YAML: %v", err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{"spec": specMap}}
	u.SetAPIVersion(meshv1alpha1.GroupVersion.String())
	u.SetKind(kind)
	u.SetNamespace(namespace)
	u.SetName(name)
	return u
}

// createMesh creates the cluster's one Mesh and deletes it when t ends. Tests
// that call it must not run in parallel with each other.
func createMesh(t *testing.T, m *meshv1alpha1.Mesh) {
	t.Helper()
	ctx := context.Background()
	if err := env.Client.Create(ctx, m); err != nil {
		t.Fatalf("creating Mesh %s: %v", m.Name, err)
	}
	t.Cleanup(func() { deleteMesh(t, m.Name) })
}

// deleteMesh deletes a Mesh and waits until it is gone.
func deleteMesh(t *testing.T, name string) {
	t.Helper()
	ctx := context.Background()
	m := &meshv1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := env.Client.Delete(ctx, m); client.IgnoreNotFound(err) != nil {
		t.Errorf("deleting Mesh %s: %v", name, err)
	}
	envtest.Eventually(t, settle, func() error {
		err := env.Client.Get(ctx, client.ObjectKeyFromObject(m), m)
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return err
		}
		return fmt.Errorf("mesh %s still there", name)
	})
}

// condition returns the condition of the given type, or an error saying it is missing.
func condition(conds []metav1.Condition, condType string) (metav1.Condition, error) {
	for _, c := range conds {
		if c.Type == condType {
			return c, nil
		}
	}
	return metav1.Condition{}, fmt.Errorf("no %s condition in %+v", condType, conds)
}

// wantCondition checks a condition's status and observed generation.
func wantCondition(conds []metav1.Condition, condType string, status metav1.ConditionStatus, generation int64) error {
	c, err := condition(conds, condType)
	if err != nil {
		return err
	}
	if c.Status != status || c.ObservedGeneration != generation {
		return fmt.Errorf("%s is %s at generation %d (%s: %s), want %s at generation %d",
			condType, c.Status, c.ObservedGeneration, c.Reason, c.Message, status, generation)
	}
	return nil
}

// unstructuredConditions reads status.conditions of a typed or unstructured object.
func unstructuredConditions(obj client.Object) ([]metav1.Condition, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("%T is not unstructured", obj)
	}
	raw, found, err := unstructured.NestedSlice(u.Object, "status", "conditions")
	if err != nil {
		return nil, fmt.Errorf("reading status.conditions: %w", err)
	}
	if !found {
		return nil, errors.New("no status.conditions yet")
	}
	conds := make([]metav1.Condition, 0, len(raw))
	for _, r := range raw {
		var c metav1.Condition
		m, _ := r.(map[string]any)
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &c); err != nil {
			return nil, err
		}
		conds = append(conds, c)
	}
	return conds, nil
}
