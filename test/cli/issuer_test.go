package cli

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/cli/commands"
	"github.com/capstanmesh/capstan/test/envtest"
	"github.com/capstanmesh/capstan/webhook/inject"
)

// crdClient is a client that knows CustomResourceDefinitions.
func crdClient(t *testing.T) client.Client {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// installCRD creates crd and deletes it when t ends.
func installCRD(t *testing.T, crd *apiextensionsv1.CustomResourceDefinition) {
	t.Helper()
	c := crdClient(t)
	if err := c.Create(context.Background(), crd); err != nil {
		t.Fatalf("creating CRD %s: %v", crd.Name, err)
	}
	t.Cleanup(func() {
		if err := c.Delete(context.Background(), crd); err != nil {
			t.Errorf("deleting CRD %s: %v", crd.Name, err)
		}
	})
}

// looseCRD is a CRD of one version v1 that keeps any field (status included:
// it has no status subresource).
func looseCRD(group, kind, plural string) *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: plural + "." + group},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{Group: group, Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: plural, Kind: kind, ListKind: kind + "List"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: ptr.To(true)}}}}}}
}

// TestCheckIssuer: with a Mesh naming a cert-manager Issuer, check reads
// the Issuer's Ready condition (cert-manager's CRD is stood in for by a
// loose one: check reads the Issuer as an unstructured object).
func TestCheckIssuer(t *testing.T) {
	ctx := context.Background()
	installCRD(t, looseCRD("cert-manager.io", "Issuer", "issuers"))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: inject.DefaultOperatorNamespace}}
	if err := env.Client.Create(ctx, ns); client.IgnoreAlreadyExists(err) != nil {
		t.Fatal(err)
	}
	mesh := &meshv1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: meshv1alpha1.MeshName},
		Spec: meshv1alpha1.MeshSpec{Certificates: meshv1alpha1.Certificates{Provider: meshv1alpha1.ProviderCertManager,
			IssuerRef: &meshv1alpha1.IssuerReference{Name: "mesh-ca"}}}}
	create(t, mesh)
	t.Cleanup(func() {
		if err := env.Client.Delete(context.Background(), mesh); err != nil {
			t.Errorf("deleting the Mesh: %v", err)
		}
	})
	issuer := &unstructured.Unstructured{}
	issuer.SetAPIVersion("cert-manager.io/v1")
	issuer.SetKind("Issuer")
	issuer.SetNamespace(ns.Name)
	issuer.SetName("mesh-ca")
	setReady := func(status string) {
		t.Helper()
		if err := unstructured.SetNestedSlice(issuer.Object, []any{map[string]any{"type": "Ready", "status": status, "message": "signing CA not found"}},
			"status", "conditions"); err != nil {
			t.Fatal(err)
		}
	}
	setReady("False")
	envtest.Eventually(t, 30*time.Second, func() error { return env.Client.Create(ctx, issuer) }) // once the new CRD is served
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), issuer) })
	checks, _ := runCheck(t)
	if c := checks["issuer"]; c.Status != commands.CheckFailed || c.Message != "cert-manager Issuer mesh-ca is not Ready: signing CA not found" {
		t.Errorf("issuer not ready: check %s (%s)", c.Status, c.Message)
	}
	setReady("True")
	if err := env.Client.Update(ctx, issuer); err != nil {
		t.Fatal(err)
	}
	checks, _ = runCheck(t)
	if c := checks["issuer"]; c.Status != commands.CheckOK {
		t.Errorf("issuer ready: check %s (%s)", c.Status, c.Message)
	}
}
