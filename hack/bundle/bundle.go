package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/blang/semver/v4"
	"github.com/operator-framework/api/pkg/lib/version"
	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/controllers/cabundle"
	"github.com/capstanmesh/capstan/test/install"
	"github.com/capstanmesh/capstan/webhook/inject"
)

// extraKinds are the install manifest's objects that go into the bundle as
// they are (namespace dropped: OLM puts them in the operator's namespace).
// The webhook Service is left out: OLM makes its own for webhookdefinitions.
var extraKinds = map[string]bool{"Service": true, "PodDisruptionBudget": true}

// writeBundle renders bundle/manifests, bundle/metadata, bundle/tests and
// bundle.Dockerfile.
func writeBundle(o options) error {
	if o.version == "" || o.image == "" {
		return fmt.Errorf("-version and -image are required")
	}
	m, err := install.Installer(o.root)
	if err != nil {
		return err
	}
	csv, err := buildCSV(o, m)
	if err != nil {
		return err
	}
	files := map[string]any{"capstan.clusterserviceversion.yaml": csv}
	if err := addManifests(files, m); err != nil {
		return err
	}
	dir := filepath.Join(o.root, "bundle", "manifests")
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("clearing %s: %w", dir, err)
	}
	for name, obj := range files {
		if err := writeYAML(filepath.Join(dir, name), obj); err != nil {
			return err
		}
	}
	return writeMetadata(o.root)
}

// addManifests adds the CRDs, the extra objects and the ClusterRoles no
// deployment's permissions hold (the restarter's, unbound) to files.
func addManifests(files map[string]any, m install.Manifest) error {
	for _, obj := range m {
		kind := obj.GetKind()
		var name string
		switch {
		case kind == "CustomResourceDefinition":
			name = obj.GetName() + ".yaml"
		case extraKinds[kind] && obj.GetName() != webhookService:
			name = obj.GetName() + "_" + strings.ToLower(kind) + ".yaml"
		case kind == "ClusterRole" && obj.GetName() != deploymentName:
			name = obj.GetName() + "_clusterrole.yaml"
		default:
			continue
		}
		c := obj.DeepCopy()
		c.SetNamespace("")
		files[name] = c.Object
	}
	return nil
}

func readCSVBase(root string) (*operatorsv1alpha1.ClusterServiceVersion, error) {
	data, err := os.ReadFile(filepath.Join(root, "config", "manifests", "bases", packageName+".clusterserviceversion.yaml"))
	if err != nil {
		return nil, fmt.Errorf("reading the CSV base: %w", err)
	}
	csv := &operatorsv1alpha1.ClusterServiceVersion{}
	if err := yaml.UnmarshalStrict(data, csv); err != nil {
		return nil, fmt.Errorf("parsing the CSV base: %w", err)
	}
	return csv, nil
}

// buildCSV fills the base with what comes from the install manifest, the
// samples and the options.
func buildCSV(o options, m install.Manifest) (map[string]any, error) {
	csv, err := readCSVBase(o.root)
	if err != nil {
		return nil, err
	}
	if err := setIdentity(csv, o); err != nil {
		return nil, err
	}
	if err := checkOwnedCRDs(csv, m); err != nil {
		return nil, err
	}
	if err := setInstallStrategy(csv, m); err != nil {
		return nil, err
	}
	if csv.Spec.WebhookDefinitions, err = webhookDefinitions(m); err != nil {
		return nil, err
	}
	examples, err := almExamples(o.root)
	if err != nil {
		return nil, err
	}
	csv.Annotations["alm-examples"] = examples
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(csv)
	if err != nil {
		return nil, fmt.Errorf("converting the CSV: %w", err)
	}
	delete(u, "status")
	unstructured.RemoveNestedField(u, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u, "spec", "install", "spec", "deployments", "0", "spec", "template", "metadata", "creationTimestamp")
	return u, nil
}

// setIdentity names the CSV after the version, records the images and the
// upgrade range (every older version upgrades to this one).
func setIdentity(csv *operatorsv1alpha1.ClusterServiceVersion, o options) error {
	v, err := semver.Parse(o.version)
	if err != nil {
		return fmt.Errorf("-version %q: %w", o.version, err)
	}
	csv.Spec.Version = version.OperatorVersion{Version: v}
	csv.Name = packageName + ".v" + o.version
	csv.Annotations["containerImage"] = o.image
	csv.Annotations["olm.skipRange"] = "<" + o.version
	csv.Spec.RelatedImages = []operatorsv1alpha1.RelatedImage{
		{Name: "manager", Image: o.image},
		{Name: "capstan-init", Image: inject.InitImageRepository + ":" + o.version},
		{Name: "proxy", Image: meshv1alpha1.DefaultProxyImage},
	}
	return nil
}

// checkOwnedCRDs holds the base's owned list to the CRDs the operator
// installs, both ways, and sets each one's storage version.
func checkOwnedCRDs(csv *operatorsv1alpha1.ClusterServiceVersion, m install.Manifest) error {
	owned := csv.Spec.CustomResourceDefinitions.Owned
	crds := m.Find("CustomResourceDefinition", "")
	if len(owned) != len(crds) {
		return fmt.Errorf("the CSV base owns %d CRDs, the operator installs %d", len(owned), len(crds))
	}
	for _, u := range crds {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := m.Into("CustomResourceDefinition", u.GetName(), &crd); err != nil {
			return err
		}
		i := slices.IndexFunc(owned, func(d operatorsv1alpha1.CRDDescription) bool { return d.Name == crd.Name })
		if i < 0 || owned[i].Kind != crd.Spec.Names.Kind {
			return fmt.Errorf("the CSV base does not own %s (kind %s)", crd.Name, crd.Spec.Names.Kind)
		}
		for _, v := range crd.Spec.Versions {
			if v.Storage {
				owned[i].Version = v.Name
			}
		}
	}
	return nil
}

// setInstallStrategy takes the Deployment and the roles from the install
// manifest. Installed by OLM, the webhook certificate comes from the
// directory OLM mounts instead of the mesh CA (OLM keeps the caBundle).
func setInstallStrategy(csv *operatorsv1alpha1.ClusterServiceVersion, m install.Manifest) error {
	var d appsv1.Deployment
	if err := m.Into("Deployment", deploymentName, &d); err != nil {
		return err
	}
	args := d.Spec.Template.Spec.Containers[0].Args
	i := slices.Index(args, "--webhook-mesh-certs")
	if i < 0 {
		return fmt.Errorf("the Deployment's args %v lack --webhook-mesh-certs", args)
	}
	args[i] = "--webhook-cert-dir=" + olmWebhookCertDir
	var cr rbacv1.ClusterRole
	if err := m.Into("ClusterRole", deploymentName, &cr); err != nil {
		return err
	}
	var role rbacv1.Role
	if err := m.Into("Role", deploymentName, &role); err != nil {
		return err
	}
	sa := d.Spec.Template.Spec.ServiceAccountName
	csv.Spec.InstallStrategy = operatorsv1alpha1.NamedInstallStrategy{
		StrategyName: operatorsv1alpha1.InstallStrategyNameDeployment,
		StrategySpec: operatorsv1alpha1.StrategyDetailsDeployment{
			DeploymentSpecs:    []operatorsv1alpha1.StrategyDeploymentSpec{{Name: d.Name, Label: d.Labels, Spec: d.Spec}},
			ClusterPermissions: []operatorsv1alpha1.StrategyDeploymentPermissions{{ServiceAccountName: sa, Rules: cr.Rules}},
			Permissions:        []operatorsv1alpha1.StrategyDeploymentPermissions{{ServiceAccountName: sa, Rules: role.Rules}},
		},
	}
	return nil
}

// webhookDefinitions turns the webhook configurations into OLM's
// descriptions. OLM sets the namespaceSelector itself (none for
// AllNamespaces), so the namespace-label injection webhook, which would
// then see every pod of the cluster, is made failurePolicy Ignore: it can
// never block a pod (pods it misses are reported on the Mesh and can be
// restarted). The webhooks of explicitly labelled pods and of Capstan's
// own kinds keep Fail.
func webhookDefinitions(m install.Manifest) ([]operatorsv1alpha1.WebhookDescription, error) {
	var mutating admissionregistrationv1.MutatingWebhookConfiguration
	if err := m.Into("MutatingWebhookConfiguration", cabundle.DefaultMutatingWebhookConfiguration, &mutating); err != nil {
		return nil, err
	}
	var validating admissionregistrationv1.ValidatingWebhookConfiguration
	if err := m.Into("ValidatingWebhookConfiguration", cabundle.DefaultValidatingWebhookConfiguration, &validating); err != nil {
		return nil, err
	}
	var out []operatorsv1alpha1.WebhookDescription
	for _, w := range mutating.Webhooks {
		d := describe(w.Name, operatorsv1alpha1.MutatingAdmissionWebhook, w.ClientConfig, w.Rules, w.FailurePolicy, w.SideEffects,
			w.TimeoutSeconds, w.AdmissionReviewVersions, w.ObjectSelector)
		d.ReinvocationPolicy = w.ReinvocationPolicy
		if w.NamespaceSelector != nil && len(w.NamespaceSelector.MatchExpressions)+len(w.NamespaceSelector.MatchLabels) > 0 {
			ignore := admissionregistrationv1.Ignore
			if hasRequiredPodLabel(w.ObjectSelector) {
				ignore = admissionregistrationv1.Fail
			}
			d.FailurePolicy = &ignore
		}
		out = append(out, d)
	}
	for _, w := range validating.Webhooks {
		out = append(out, describe(w.Name, operatorsv1alpha1.ValidatingAdmissionWebhook, w.ClientConfig, w.Rules, w.FailurePolicy,
			w.SideEffects, w.TimeoutSeconds, w.AdmissionReviewVersions, w.ObjectSelector))
	}
	slices.SortFunc(out, func(a, b operatorsv1alpha1.WebhookDescription) int {
		return strings.Compare(a.GenerateName, b.GenerateName)
	})
	return out, nil
}

// hasRequiredPodLabel: the selector matches only pods carrying a label
// with a given value (capstan.dev/inject=true).
func hasRequiredPodLabel(sel *metav1.LabelSelector) bool {
	return sel != nil && len(sel.MatchLabels) > 0
}

func describe(name string, typ operatorsv1alpha1.WebhookAdmissionType, cc admissionregistrationv1.WebhookClientConfig,
	rules []admissionregistrationv1.RuleWithOperations, fp *admissionregistrationv1.FailurePolicyType,
	se *admissionregistrationv1.SideEffectClass, timeout *int32, versions []string, objSel *metav1.LabelSelector,
) operatorsv1alpha1.WebhookDescription {
	d := operatorsv1alpha1.WebhookDescription{
		GenerateName: name, Type: typ, DeploymentName: deploymentName, ContainerPort: 443,
		TargetPort: ptr.To(intstr.FromInt32(meshv1alpha1.PortWebhook)), Rules: rules, FailurePolicy: fp, SideEffects: se,
		TimeoutSeconds: timeout, AdmissionReviewVersions: versions, ObjectSelector: objSel,
	}
	if cc.Service != nil {
		d.WebhookPath = cc.Service.Path
	}
	return d
}

// almExamples is the JSON list of the samples, in file order.
func almExamples(root string) (string, error) {
	dir := filepath.Join(root, "config", "samples")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("reading the samples: %w", err)
	}
	var objs []map[string]any
	for _, e := range entries {
		if e.Name() == "kustomization.yaml" || !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		m, err := install.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return "", err
		}
		for _, o := range m {
			objs = append(objs, o.Object)
		}
	}
	data, err := json.MarshalIndent(objs, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encoding alm-examples: %w", err)
	}
	return string(data), nil
}

func writeYAML(path string, obj any) error {
	data, err := yaml.Marshal(obj)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	return writeFile(path, data)
}

func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil { //nolint:gosec // a generated manifest, read by everyone
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
