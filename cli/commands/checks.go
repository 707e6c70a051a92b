package commands

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/config/crd"
)

// MinNativeSidecarMinor is the first Kubernetes 1.x with native sidecars
// (init containers with restartPolicy Always) on by default.
const MinNativeSidecarMinor = 28

func checkKubernetesVersion(_ context.Context, _ *Options, c *cluster) (string, string) {
	info, err := c.discovery.ServerVersion()
	if err != nil {
		return failed("reading the API server's version: %v", err)
	}
	if !supportsNativeSidecars(info.Major, info.Minor) {
		return failed("Kubernetes %s has no native sidecars (1.%d+ needed): set Mesh.spec.injection.nativeSidecar: false, or upgrade",
			info.GitVersion, MinNativeSidecarMinor)
	}
	return CheckOK, fmt.Sprintf("Kubernetes %s supports native sidecars (1.%d+)", info.GitVersion, MinNativeSidecarMinor)
}

// supportsNativeSidecars reads the API server's major and minor version
// ("1", "30+"): 1.28 or later; an unreadable version is not.
func supportsNativeSidecars(major, minor string) bool {
	ma, err := strconv.Atoi(major)
	if err != nil {
		return false
	}
	mi, err := strconv.Atoi(strings.TrimRight(minor, "+"))
	if err != nil {
		return false
	}
	return ma > 1 || (ma == 1 && mi >= MinNativeSidecarMinor)
}

// checkCRDs compares the installed CRDs with the embedded ones: every
// version's name, served and storage flags and schema.
func checkCRDs(ctx context.Context, _ *Options, c *cluster) (string, string) {
	want, err := embeddedCRDs()
	if err != nil {
		return failed("%v", err)
	}
	var missing, stale []string
	for _, w := range want {
		got := &apiextensionsv1.CustomResourceDefinition{}
		err := c.client.Get(ctx, client.ObjectKey{Name: w.Name}, got)
		switch {
		case apierrors.IsNotFound(err):
			missing = append(missing, w.Name)
		case err != nil:
			return failed("reading CRD %s: %v", w.Name, err)
		case !sameVersions(w, got):
			stale = append(stale, w.Name)
		}
	}
	switch {
	case len(missing) > 0:
		return failed("not installed: %s (kubectl apply -k config/crd, or install Capstan)", strings.Join(missing, ", "))
	case len(stale) > 0:
		return failed("installed, but not the ones capstanctl %s was built with: %s (apply the CRDs of this release)", Version, strings.Join(stale, ", "))
	}
	return CheckOK, fmt.Sprintf("%d CRDs installed and current", len(want))
}

func embeddedCRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	files, err := fs.Glob(crd.Bases, "bases/*.yaml")
	if err != nil {
		return nil, fmt.Errorf("listing the embedded CRDs: %w", err)
	}
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		b, err := fs.ReadFile(crd.Bases, f)
		if err != nil {
			return nil, fmt.Errorf("reading the embedded %s: %w", f, err)
		}
		c := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(b, c); err != nil {
			return nil, fmt.Errorf("decoding the embedded %s: %w", f, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func sameVersions(want, got *apiextensionsv1.CustomResourceDefinition) bool {
	if len(want.Spec.Versions) != len(got.Spec.Versions) {
		return false
	}
	for i, w := range want.Spec.Versions {
		g := got.Spec.Versions[i]
		if w.Name != g.Name || w.Served != g.Served || w.Storage != g.Storage || !equality.Semantic.DeepEqual(w.Schema, g.Schema) {
			return false
		}
	}
	return true
}

func checkOperator(ctx context.Context, o *Options, _ *cluster) (string, string) {
	d, err := o.operatorDeployment(ctx)
	switch {
	case err != nil:
		return failed("%v", err)
	case d == nil:
		return failed("no Deployment labelled %s in namespace %s (--operator-namespace)", labelsString(OperatorLabels), o.OperatorNamespace)
	}
	s := d.Status
	if s.ObservedGeneration < d.Generation || s.AvailableReplicas == 0 || s.UpdatedReplicas < s.Replicas {
		return failed("Deployment %s/%s not ready: %d/%d replicas available, %d updated", d.Namespace, d.Name, s.AvailableReplicas, s.Replicas, s.UpdatedReplicas)
	}
	return CheckOK, fmt.Sprintf("Deployment %s/%s ready: %d/%d replicas available", d.Namespace, d.Name, s.AvailableReplicas, s.Replicas)
}

func labelsString(m map[string]string) string {
	return metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: m})
}

// InjectWebhookName is the injection webhook a pod labelled
// capstan.dev/inject=true reaches in any namespace without the
// namespace label.
const InjectWebhookName = "inject-pod.capstan.dev"

// checkWebhook checks the injection webhook's caBundle, then has the API
// server call it: a server-side dry-run creation of a pod labelled
// capstan.dev/inject=true (webhooks are side-effect free, so dry-run calls
// them) must come back with the sidecar.
func checkWebhook(ctx context.Context, o *Options, c *cluster) (string, string) {
	wh, err := findWebhook(ctx, c.client)
	if err != nil {
		return failed("%v", err)
	}
	if wh == nil {
		return failed("no MutatingWebhookConfiguration has the webhook %s: the operator's webhooks are not installed", InjectWebhookName)
	}
	if problem := caBundleProblem(wh.ClientConfig.CABundle, time.Now()); problem != "" {
		return failed("webhook %s: %s", InjectWebhookName, problem)
	}
	ns := c.namespace
	if ns == o.OperatorNamespace {
		ns = metav1.NamespaceDefault
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "capstanctl-check-", Namespace: ns,
			Labels: map[string]string{meshv1alpha1.LabelInject: "true"}},
		Spec: corev1.PodSpec{ServiceAccountName: "default", Containers: []corev1.Container{{Name: "check", Image: "capstanctl-check"}}},
	}
	if err := c.client.Create(ctx, pod, client.DryRunAll); err != nil {
		return failed("the API server could not use the webhook (dry-run pod in %s): %v", ns, err)
	}
	for _, ic := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		if ic.Name == meshv1alpha1.ProxyContainerName {
			return CheckOK, "the API server reached the webhook over TLS with its caBundle, and it injected a dry-run pod in " + ns
		}
	}
	return CheckWarning, "a dry-run pod labelled capstan.dev/inject=true in " + ns + " came back without a sidecar: is the webhook's selector changed?"
}

func findWebhook(ctx context.Context, c client.Client) (*admissionregistrationv1.MutatingWebhook, error) {
	list := &admissionregistrationv1.MutatingWebhookConfigurationList{}
	if err := c.List(ctx, list); err != nil {
		return nil, fmt.Errorf("listing MutatingWebhookConfigurations: %w", err)
	}
	for i := range list.Items {
		for j := range list.Items[i].Webhooks {
			if wh := &list.Items[i].Webhooks[j]; wh.Name == InjectWebhookName {
				return wh, nil
			}
		}
	}
	return nil, nil
}

// caBundleProblem says what is wrong with a webhook's caBundle ("" if nothing).
func caBundleProblem(bundle []byte, now time.Time) string {
	if len(bytes.TrimSpace(bundle)) == 0 {
		return "caBundle is empty: the API server cannot verify the webhook's certificate"
	}
	n := 0
	for rest := bundle; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return "caBundle holds an unreadable certificate: " + err.Error()
		}
		if now.After(cert.NotAfter) {
			return fmt.Sprintf("caBundle certificate %q expired at %s", cert.Subject.CommonName, cert.NotAfter.UTC().Format(time.RFC3339))
		}
		n++
	}
	if n == 0 {
		return "caBundle holds no PEM certificate"
	}
	return ""
}

// checkIssuer checks the cert-manager issuer the Mesh names (read as an
// unstructured object: only the certificate code knows cert-manager's types).
func checkIssuer(ctx context.Context, o *Options, c *cluster) (string, string) {
	mesh := &meshv1alpha1.Mesh{}
	if err := c.client.Get(ctx, client.ObjectKey{Name: meshv1alpha1.MeshName}, mesh); err != nil {
		if apierrors.IsNotFound(err) {
			return CheckSkipped, "no Mesh " + meshv1alpha1.MeshName + ": the built-in CA is used"
		}
		return failed("reading the Mesh: %v", err)
	}
	ref := mesh.Spec.Certificates.IssuerRef
	if mesh.Spec.Certificates.Provider != meshv1alpha1.ProviderCertManager || ref == nil {
		return CheckSkipped, "the Mesh uses the built-in CA"
	}
	kind := ref.Kind
	if kind == "" {
		kind = "Issuer"
	}
	issuer := &unstructured.Unstructured{}
	issuer.SetAPIVersion("cert-manager.io/v1")
	issuer.SetKind(kind)
	key := client.ObjectKey{Name: ref.Name}
	if kind == "Issuer" {
		key.Namespace = o.OperatorNamespace
	}
	if err := c.client.Get(ctx, key, issuer); err != nil {
		return failed("reading cert-manager %s %s: %v", kind, ref.Name, err)
	}
	return issuerReady(kind, ref.Name, issuer)
}

func issuerReady(kind, name string, issuer *unstructured.Unstructured) (string, string) {
	conds, _, _ := unstructured.NestedSlice(issuer.Object, "status", "conditions")
	for _, raw := range conds {
		cond, _ := raw.(map[string]any)
		if cond["type"] != "Ready" {
			continue
		}
		if cond["status"] == "True" {
			return CheckOK, fmt.Sprintf("cert-manager %s %s is Ready", kind, name)
		}
		return failed("cert-manager %s %s is not Ready: %v", kind, name, cond["message"])
	}
	return failed("cert-manager %s %s has no Ready condition yet", kind, name)
}
