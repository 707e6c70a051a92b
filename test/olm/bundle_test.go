// Package olm validates Capstan's OLM bundle and catalog with the tools
// OperatorHub and OLM use: operator-framework/api's validators and opm.
package olm

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/operator-framework/api/pkg/manifests"
	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	"github.com/operator-framework/api/pkg/validation"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/capstanmesh/capstan/test/envtest"
	"github.com/capstanmesh/capstan/webhook/handler"
)

// k8sVersion is the Kubernetes release the deprecated-API checks look ahead to.
const k8sVersion = "1.37"

// olmWebhookCertDir is where OLM mounts the webhook serving certificate.
const olmWebhookCertDir = "/tmp/k8s-webhook-server/serving-certs"

func root(t *testing.T) string {
	t.Helper()
	r, err := envtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func loadBundle(t *testing.T) *manifests.Bundle {
	t.Helper()
	b, err := manifests.GetBundleFromDir(filepath.Join(root(t), "bundle"))
	if err != nil {
		t.Fatalf("loading bundle/: %v", err)
	}
	if b.CSV == nil {
		t.Fatal("bundle/ has no CSV")
	}
	return b
}

// TestBundleValidates runs the default bundle validators and the
// OperatorHubV2, GoodPractices and AlphaDeprecatedAPIs ones (Kubernetes
// 1.37) on bundle/: no error. Warnings are logged; docs/install.md explains
// the expected ones.
func TestBundleValidates(t *testing.T) {
	b := loadBundle(t)
	validators := append(slices.Clone(validation.DefaultBundleValidators),
		validation.OperatorHubV2Validator, validation.GoodPracticesValidator, validation.AlphaDeprecatedAPIsValidator)
	results := validators.Validate(b, map[string]string{"k8s-version": k8sVersion})
	if len(results) == 0 {
		t.Fatal("no validation result")
	}
	var warnings []string
	for _, r := range results {
		for _, e := range r.Errors {
			t.Errorf("%s: %s", r.Name, e.Error())
		}
		for _, w := range r.Warnings {
			warnings = append(warnings, fmt.Sprintf("%s: %s", r.Name, w.Error()))
		}
	}
	slices.Sort(warnings)
	for _, w := range slices.Compact(warnings) {
		t.Logf("warning: %s", w)
	}
}

// TestCSV checks what the validators do not: OLM v1's needs (AllNamespaces,
// no dependency), native sidecars' Kubernetes version, an example and
// descriptors for every owned CRD, and a manager that takes its webhook
// certificate from the directory OLM mounts.
func TestCSV(t *testing.T) {
	b := loadBundle(t)
	csv := b.CSV
	if csv.Spec.MinKubeVersion != "1.28.0" {
		t.Errorf("minKubeVersion %q, want 1.28.0 (native sidecars)", csv.Spec.MinKubeVersion)
	}
	for _, m := range csv.Spec.InstallModes {
		if m.Supported != (m.Type == operatorsv1alpha1.InstallModeTypeAllNamespaces) {
			t.Errorf("install mode %s supported=%v: OLM v1 installs AllNamespaces only", m.Type, m.Supported)
		}
	}
	if len(csv.Spec.CustomResourceDefinitions.Required) > 0 || len(csv.Spec.APIServiceDefinitions.Required) > 0 {
		t.Errorf("the CSV requires APIs %+v: OLM v1 resolves no dependency", csv.Spec.CustomResourceDefinitions.Required)
	}
	if _, err := os.Stat(filepath.Join(root(t), "bundle", "metadata", "dependencies.yaml")); !os.IsNotExist(err) {
		t.Errorf("bundle/metadata/dependencies.yaml exists (%v): OLM v1 resolves no dependency", err)
	}
	svg, err := os.ReadFile(filepath.Join(root(t), "config", "manifests", "bases", "icon.svg"))
	if err != nil {
		t.Fatal(err)
	}
	if len(csv.Spec.Icon) != 1 || csv.Spec.Icon[0].Data != base64.StdEncoding.EncodeToString(svg) || csv.Spec.Icon[0].MediaType != "image/svg+xml" {
		t.Error("the CSV's icon is not config/manifests/bases/icon.svg: base64 -w0 it into the CSV base")
	}
	checkOwned(t, b)
	checkDeployment(t, csv)
	checkWebhookDefinitions(t, csv)
}

func checkOwned(t *testing.T, b *manifests.Bundle) {
	t.Helper()
	var examples []metav1.TypeMeta
	if err := json.Unmarshal([]byte(b.CSV.Annotations["alm-examples"]), &examples); err != nil {
		t.Fatalf("alm-examples: %v", err)
	}
	owned := b.CSV.Spec.CustomResourceDefinitions.Owned
	if len(owned) != len(b.V1CRDs) || len(owned) == 0 {
		t.Errorf("the CSV owns %d CRDs, the bundle has %d", len(owned), len(b.V1CRDs))
	}
	for _, d := range owned {
		if d.DisplayName == "" || d.Description == "" || len(d.SpecDescriptors) == 0 || len(d.StatusDescriptors) == 0 {
			t.Errorf("owned CRD %s lacks a display name, description, spec or status descriptors", d.Name)
		}
		if !slices.ContainsFunc(examples, func(e metav1.TypeMeta) bool { return e.Kind == d.Kind }) {
			t.Errorf("alm-examples has no %s", d.Kind)
		}
	}
}

func checkDeployment(t *testing.T, csv *operatorsv1alpha1.ClusterServiceVersion) {
	t.Helper()
	specs := csv.Spec.InstallStrategy.StrategySpec.DeploymentSpecs
	if len(specs) != 1 || len(specs[0].Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("install strategy %+v: want one Deployment with one container", specs)
	}
	c := specs[0].Spec.Template.Spec.Containers[0]
	if !slices.Contains(c.Args, "--webhook-cert-dir="+olmWebhookCertDir) || slices.Contains(c.Args, "--webhook-mesh-certs") {
		t.Errorf("args %v: under OLM the manager must read its webhook certificate from %s", c.Args, olmWebhookCertDir)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		t.Errorf("resources %+v: want CPU and memory requests", c.Resources)
	}
	if len(csv.Spec.InstallStrategy.StrategySpec.ClusterPermissions) != 1 || len(csv.Spec.InstallStrategy.StrategySpec.Permissions) != 1 {
		t.Errorf("want the manager's ClusterRole and Role rules")
	}
}

// checkWebhookDefinitions: every handler is called; OLM gives the webhooks
// no namespaceSelector, so a pod webhook that fails closed must require a
// pod label, and none may match the manager's own pods.
func checkWebhookDefinitions(t *testing.T, csv *operatorsv1alpha1.ClusterServiceVersion) {
	t.Helper()
	podLabels := labels.Set(csv.Spec.InstallStrategy.StrategySpec.DeploymentSpecs[0].Spec.Template.Labels)
	seen := map[string]bool{}
	for _, w := range csv.Spec.WebhookDefinitions {
		if w.WebhookPath != nil {
			seen[*w.WebhookPath] = true
		}
		if w.DeploymentName != csv.Spec.InstallStrategy.StrategySpec.DeploymentSpecs[0].Name {
			t.Errorf("webhook %s is served by %q, not the manager", w.GenerateName, w.DeploymentName)
		}
		if w.Type != operatorsv1alpha1.MutatingAdmissionWebhook {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(w.ObjectSelector)
		if err != nil {
			t.Fatal(err)
		}
		if sel.Matches(podLabels) {
			t.Errorf("webhook %s matches the manager's own pods %v", w.GenerateName, podLabels)
		}
		fails := w.FailurePolicy == nil || *w.FailurePolicy == admissionregistrationv1.Fail
		if fails && (w.ObjectSelector == nil || len(w.ObjectSelector.MatchLabels) == 0) {
			t.Errorf("webhook %s fails closed on every pod of the cluster (no namespaceSelector under OLM)", w.GenerateName)
		}
	}
	for _, p := range []string{handler.PathMutatePod, handler.PathValidateMesh, handler.PathValidateMeshRoute,
		handler.PathValidateDestinationPolicy, handler.PathValidatePeerAuthentication} {
		if !seen[p] {
			t.Errorf("no webhook definition calls %s", p)
		}
	}
}
