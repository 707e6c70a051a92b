package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/controllers"
	"github.com/capstanmesh/capstan/test/envtest"
)

// loadSamples reads every object of the files listed in config/samples/kustomization.yaml.
func loadSamples(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	dir := filepath.Join(env.RepoRoot, "config", "samples")
	raw, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var kustomization struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.UnmarshalStrict(raw, &kustomization); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	var objs []*unstructured.Unstructured
	for _, file := range kustomization.Resources {
		data, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range bytes.Split(data, []byte("\n---\n")) {
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal(doc, &u.Object); err != nil {
				t.Fatalf("%s document %d: %v", file, i, err)
			}
			objs = append(objs, u)
		}
	}
	if len(objs) < 5 {
		t.Fatalf("found %d sample objects, want one per kind and two PeerAuthentications", len(objs))
	}
	return objs
}

// TestSamplesAreAccepted applies every sample and checks that the API server
// takes it as written and the reconcilers accept it.
func TestSamplesAreAccepted(t *testing.T) {
	ns := env.NewNamespace(t)
	env.StartManager(t, controllers.SetupWithManager, ns)
	ctx := context.Background()
	objs := loadSamples(t)
	kinds := map[string]int{}
	for _, u := range objs {
		kinds[u.GetKind()]++
		if u.GetKind() != "Mesh" {
			u.SetNamespace(ns)
		}
		if err := env.Client.Create(ctx, u); err != nil {
			t.Fatalf("creating sample %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		if u.GetKind() == "Mesh" {
			t.Cleanup(func() { deleteMesh(t, u.GetName()) })
		}
	}
	for _, kind := range []string{"Mesh", "MeshRoute", "DestinationPolicy", "PeerAuthentication"} {
		if kinds[kind] == 0 {
			t.Errorf("no %s sample", kind)
		}
	}
	for _, u := range objs {
		envtest.Eventually(t, settle, func() error {
			got := &unstructured.Unstructured{}
			got.SetGroupVersionKind(u.GroupVersionKind())
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(u), got); err != nil {
				return err
			}
			conds, err := unstructuredConditions(got)
			if err != nil {
				return fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
			}
			if err := wantCondition(conds, meshv1alpha1.ConditionAccepted, metav1.ConditionTrue, 1); err != nil {
				return fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
			}
			return nil
		})
	}
}
