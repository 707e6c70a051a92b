package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/capstanmesh/capstan/cli/analyze"
	"github.com/capstanmesh/capstan/cli/commands"
	"github.com/capstanmesh/capstan/controllers/uninjected"
	"github.com/capstanmesh/capstan/test/envtest"
	"github.com/capstanmesh/capstan/webhook/inject"
)

// capstanctl runs the CLI in-process against the test API server as an admin.
func capstanctl(t *testing.T, args ...string) (string, int) {
	t.Helper()
	return capstanctlWith(t, env.Kubeconfig, args...)
}

// capstanctlWith runs the CLI in-process with the kubeconfig.
func capstanctlWith(t *testing.T, kubeconfig string, args ...string) (string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := commands.Execute("capstanctl", append(args, "--kubeconfig", kubeconfig), strings.NewReader(""), &out, &errOut)
	if errOut.Len() > 0 {
		t.Logf("stderr: %s", errOut.String())
	}
	return out.String(), code
}

func decodeAnalyze(t *testing.T, out string) commands.AnalyzeResult {
	t.Helper()
	var res commands.AnalyzeResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("decoding %q: %v", out, err)
	}
	return res
}

// find returns the finding with code about object ("Kind ns/name").
func find(res commands.AnalyzeResult, code, object string) *analyze.Finding {
	for i := range res.Findings {
		if f := &res.Findings[i]; f.Code == code && f.Object.String() == object {
			return f
		}
	}
	return nil
}

func TestAnalyzeLiveState(t *testing.T) {
	s := newState(t)
	installGatewayAPI(t, s.batch)
	out, code := capstanctl(t, "analyze", "-A", "-o", "json")
	if code != 1 {
		t.Errorf("exit status %d, want 1 (errors found)", code)
	}
	res := decodeAnalyze(t, out)
	checks := []struct {
		code, object string
		severity     analyze.Severity
		says         []string
	}{
		{analyze.CodeUninjectedPods, "Deployment " + s.shop + "/web", analyze.SeverityError, []string{"kubectl rollout restart deployment/web -n " + s.shop}},
		{analyze.CodeStrictBlocksCallers, "Pod " + s.shop + "/cart-0", analyze.SeverityError, []string{"CronJob " + s.batch + "/report", "mode: PERMISSIVE", "app: \"cart\""}},
		{analyze.CodeWeightedBypass, "MeshRoute " + s.shop + "/canary", analyze.SeverityWarning, []string{"Ingress " + s.shop + "/www", s.shop + "/reviews-public (NodePort)", "Deployment " + s.shop + "/web"}},
		{analyze.CodeWholePoolEjection, "DestinationPolicy " + s.shop + "/reviews", analyze.SeverityWarning, []string{"admitted because of the annotation"}},
		{analyze.CodeGatewayAPIVersion, "CustomResourceDefinition httproutes.gateway.networking.k8s.io", analyze.SeverityWarning, []string{"release v1.0.0", s.batch + "/web"}},
	}
	for _, c := range checks {
		f := find(res, c.code, c.object)
		if f == nil {
			t.Errorf("no %s finding about %s in:\n%s", c.code, c.object, out)
			continue
		}
		if f.Severity != c.severity {
			t.Errorf("%s %s: severity %s, want %s", c.code, c.object, f.Severity, c.severity)
		}
		for _, want := range c.says {
			if !strings.Contains(f.Message+f.Fix, want) {
				t.Errorf("%s %s does not say %q: %s\n%s", c.code, c.object, want, f.Message, f.Fix)
			}
		}
	}
	// -n keeps the namespace's findings (and the cluster-scoped ones).
	out, _ = capstanctl(t, "analyze", "-n", s.batch, "-o", "json")
	for _, f := range decodeAnalyze(t, out).Findings {
		if f.Object.Namespace != "" && f.Object.Namespace != s.batch {
			t.Errorf("analyze -n %s reports %s", s.batch, f.Object)
		}
	}
}

func TestRestartUninjected(t *testing.T) {
	shop := env.NewNamespace(t)
	s := state{shop: shop}
	s.uninjectedDeployment(t, "web")
	labelNamespace(t, shop)
	out, code := capstanctl(t, "restart-uninjected", "-n", shop, "--dry-run")
	if code != 0 || !strings.Contains(out, "would restart") {
		t.Fatalf("dry run: exit %d, output:\n%s", code, out)
	}
	d := &appsv1.Deployment{}
	key := client.ObjectKey{Namespace: shop, Name: "web"}
	if err := env.Client.Get(context.Background(), key, d); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Spec.Template.Annotations[uninjected.AnnotationRestartedAt]; ok {
		t.Fatal("--dry-run restarted the Deployment")
	}
	out, code = capstanctl(t, "restart-uninjected", "-n", shop)
	if code != 0 || !strings.Contains(out, "restarted (generation 2)") {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
	if err := env.Client.Get(context.Background(), key, d); err != nil {
		t.Fatal(err)
	}
	if d.Spec.Template.Annotations[uninjected.AnnotationRestartedAt] == "" || d.Annotations[uninjected.AnnotationRestartedGeneration] != "2" || d.Generation != 2 {
		t.Errorf("the Deployment was not restarted as the operator restarts it: generation %d, annotations %v, template annotations %v",
			d.Generation, d.Annotations, d.Spec.Template.Annotations)
	}
}

func runCheck(t *testing.T) (map[string]commands.Check, int) {
	t.Helper()
	out, code := capstanctl(t, "check", "-o", "json")
	var res commands.CheckResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("decoding %q: %v", out, err)
	}
	checks := map[string]commands.Check{}
	for _, c := range res.Checks {
		checks[c.Name] = c
	}
	return checks, code
}

// TestCheck: the API server's version, the CRDs envtest installed from
// config/crd/bases and the webhooks RunWithWebhooks serves pass; the
// operator passes once its Deployment is available.
func TestCheck(t *testing.T) {
	want := map[string]string{
		"kubernetes-version": commands.CheckOK, "crds": commands.CheckOK, "operator": commands.CheckFailed,
		"webhook": commands.CheckOK, "issuer": commands.CheckSkipped,
	}
	checks, code := runCheck(t)
	if code != 1 {
		t.Errorf("exit status %d, want 1: no operator yet", code)
	}
	for name, status := range want {
		if c := checks[name]; c.Status != status {
			t.Errorf("check %s: %s (%s), want %s", name, c.Status, c.Message, status)
		}
	}
	startOperator(t)
	checks, code = runCheck(t)
	if c := checks["operator"]; code != 0 || c.Status != commands.CheckOK {
		t.Errorf("with the operator available: exit %d, operator check %s (%s)", code, c.Status, c.Message)
	}
	// A caBundle that did not sign the webhook's certificate: the API
	// server refuses the webhook's TLS, and check says so.
	restore := replaceCABundle(t, selfSignedPEM(t, time.Now().Add(time.Hour)))
	checks, code = runCheck(t)
	if c := checks["webhook"]; code != 1 || c.Status != commands.CheckFailed || !strings.Contains(c.Message, "x509") {
		t.Errorf("with a wrong caBundle: exit %d, webhook check %s (%s)", code, c.Status, c.Message)
	}
	restore()
}

// replaceCABundle sets the injection webhooks' caBundle and returns the
// function putting the old one back.
func replaceCABundle(t *testing.T, bundle []byte) func() {
	t.Helper()
	ctx := context.Background()
	list := &admissionregistrationv1.MutatingWebhookConfigurationList{}
	if err := env.Client.List(ctx, list); err != nil {
		t.Fatal(err)
	}
	var restores []func()
	for i := range list.Items {
		cfg := &list.Items[i]
		old := cfg.DeepCopy()
		for j := range cfg.Webhooks {
			cfg.Webhooks[j].ClientConfig.CABundle = bundle
		}
		if err := env.Client.Update(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		restores = append(restores, func() {
			envtest.Eventually(t, 30*time.Second, func() error {
				cur := &admissionregistrationv1.MutatingWebhookConfiguration{}
				if err := env.Client.Get(ctx, client.ObjectKeyFromObject(old), cur); err != nil {
					return err
				}
				cur.Webhooks = old.Webhooks
				return env.Client.Update(ctx, cur)
			})
		})
	}
	return func() {
		for _, r := range restores {
			r()
		}
	}
}

// selfSignedPEM is a self-signed CA certificate valid until notAfter.
func selfSignedPEM(t *testing.T, notAfter time.Time) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "not the webhook's CA"},
		NotBefore: notAfter.Add(-2 * time.Hour), NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// startOperator creates the operator's Deployment and reports it available
// (envtest runs no Deployment controller).
func startOperator(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: inject.DefaultOperatorNamespace}}
	if err := env.Client.Create(ctx, ns); client.IgnoreAlreadyExists(err) != nil {
		t.Fatal(err)
	}
	labels := commands.OperatorLabels
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "capstan-manager", Labels: labels},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "manager", Image: "ghcr.io/capstanmesh/capstan:v9.9.9"}}}}}}
	create(t, d)
	t.Cleanup(func() {
		if err := env.Client.Delete(context.Background(), d); err != nil {
			t.Errorf("deleting the operator Deployment: %v", err)
		}
	})
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1}
	if err := env.Client.Status().Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	out, _ := capstanctl(t, "version")
	if !strings.Contains(out, "v9.9.9") {
		t.Errorf("version does not give the operator's image tag:\n%s", out)
	}
}

func TestVersion(t *testing.T) {
	out, code := capstanctl(t, "version", "-o", "yaml")
	if code != 0 || !strings.Contains(out, "kubernetes: v1.37.2") {
		t.Errorf("exit %d, output:\n%s", code, out)
	}
}

// TestKubectlPlugin runs `kubectl capstan analyze` with the kubectl built
// beside the API server: kubectl finds kubectl-capstan on the PATH.
func TestKubectlPlugin(t *testing.T) {
	shop := env.NewNamespace(t)
	state{shop: shop}.uninjectedDeployment(t, "web")
	labelNamespace(t, shop)
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "kubectl-capstan"), "./cmd/capstanctl")
	build.Dir = env.RepoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building kubectl-capstan: %v\n%s", err, out)
	}
	cmd := exec.Command(env.Kubectl, "capstan", "analyze", "-n", shop)
	cmd.Env = append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"), "KUBECONFIG="+env.Kubeconfig)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("kubectl capstan analyze: %v (want exit status 1)\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	lines := strings.Split(stdout.String(), "\n")
	if !slices.ContainsFunc(lines, func(l string) bool {
		return strings.HasPrefix(l, analyze.CodeUninjectedPods) && strings.Contains(l, "Deployment "+shop+"/web")
	}) {
		t.Errorf("kubectl capstan analyze does not report %s for Deployment %s/web:\n%s", analyze.CodeUninjectedPods, shop, stdout.String())
	}
}
