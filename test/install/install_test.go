package install

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/controllers/cabundle"
	"github.com/capstanmesh/capstan/test/envtest"
	"github.com/capstanmesh/capstan/webhook/handler"
)

const (
	operatorNamespace = "capstan-system"
	managerName       = "capstan-manager"
	webhookService    = "capstan-webhook"
	// olmWebhookCertDir is where OLM (and config/certmanager) mount the
	// webhook serving certificate: controller-runtime's default directory.
	olmWebhookCertDir = "/tmp/k8s-webhook-server/serving-certs"
)

var env *envtest.Env

// TestMain starts one API server with cert-manager's CRDs, so that the
// config/certmanager overlay applies too.
func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := certManagerCRDs()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		e, err := envtest.StartWithCRDs(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		env = e
		code := m.Run()
		if err := e.Stop(); err != nil && code == 0 {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
		return code
	}())
}

func certManagerCRDs() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/cert-manager/cert-manager").Output()
	if err != nil {
		return "", fmt.Errorf("finding cert-manager's module: %w", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "deploy", "crds"), nil
}

// TestInstallManifest applies dist/install.yaml with server-side apply, then
// the config/certmanager overlay over it, and checks what the API server
// holds: the webhooks call the manager's Service at the handlers' paths,
// the Services reach the manager's ports, and the restricted Pod Security
// Standard admits the manager's pods.
func TestInstallManifest(t *testing.T) {
	ctx := context.Background()
	m, err := Installer(env.RepoRoot)
	if err != nil {
		t.Fatal(err)
	}
	if err := Apply(ctx, env.Client, m); err != nil {
		t.Fatalf("server-side apply of dist/install.yaml: %v", err)
	}
	t.Run("Webhooks", func(t *testing.T) { checkWebhooks(ctx, t) })
	t.Run("Services", func(t *testing.T) { checkServices(ctx, t) })
	t.Run("Deployment", func(t *testing.T) { checkDeployment(ctx, t, "--webhook-mesh-certs") })
	t.Run("PodSecurity", func(t *testing.T) { checkPodSecurity(ctx, t) })
	t.Run("CertManagerOverlay", func(t *testing.T) {
		overlay, err := Kustomize(env.Kubectl, filepath.Join(env.RepoRoot, "config", "certmanager"))
		if err != nil {
			t.Fatal(err)
		}
		if err := Apply(ctx, env.Client, overlay); err != nil {
			t.Fatalf("server-side apply of config/certmanager: %v", err)
		}
		checkCertManager(ctx, t)
		checkWebhooks(ctx, t)
	})
}

// TestInstallerIsTheDefaultKustomization renders config/default and
// compares it with dist/install.yaml: the installer is current.
func TestInstallerIsTheDefaultKustomization(t *testing.T) {
	want, err := Kustomize(env.Kubectl, filepath.Join(env.RepoRoot, "config", "default"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Installer(env.RepoRoot)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("dist/install.yaml has %d objects, config/default renders %d: run make build-installer", len(got), len(want))
	}
	for i := range want {
		if fmt.Sprint(got[i].Object) != fmt.Sprint(want[i].Object) {
			t.Errorf("dist/install.yaml differs from config/default at %s %s: run make build-installer", want[i].GetKind(), want[i].GetName())
		}
	}
}

func getDeployment(ctx context.Context, t *testing.T) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: managerName}, d); err != nil {
		t.Fatal(err)
	}
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("the manager pod has %d containers, want 1", len(d.Spec.Template.Spec.Containers))
	}
	return d
}

// flagValue returns the value of --name=value in args.
func flagValue(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// flagPort returns the port of the --name=host:port (or =port) flag.
func flagPort(t *testing.T, args []string, name string) int32 {
	t.Helper()
	v, ok := flagValue(args, name)
	if !ok {
		t.Fatalf("the manager has no --%s", name)
	}
	if !strings.Contains(v, ":") {
		v = ":" + v
	}
	_, p, err := net.SplitHostPort(v)
	if err != nil {
		t.Fatalf("--%s=%s: %v", name, v, err)
	}
	n, err := strconv.ParseInt(p, 10, 32)
	if err != nil {
		t.Fatalf("--%s=%s: %v", name, v, err)
	}
	return int32(n)
}

// containerPort resolves a Service's targetPort against the container.
func containerPort(c corev1.Container, target intstr.IntOrString) (int32, bool) {
	for _, p := range c.Ports {
		if (target.Type == intstr.String && p.Name == target.StrVal) || (target.Type == intstr.Int && p.ContainerPort == target.IntVal) {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

func checkServices(ctx context.Context, t *testing.T) {
	d := getDeployment(ctx, t)
	c := d.Spec.Template.Spec.Containers[0]
	for _, tc := range []struct {
		service string
		port    int32
		flag    string
	}{
		{webhookService, 443, "webhook-port"},
		{"capstan-xds", meshv1alpha1.PortXDS, "xds-address"},
		{"capstan-metrics", meshv1alpha1.PortMetrics, "metrics-bind-address"},
	} {
		svc := &corev1.Service{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: tc.service}, svc); err != nil {
			t.Fatal(err)
		}
		if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) || len(svc.Spec.Selector) == 0 {
			t.Errorf("Service %s selects %v, which the manager's pods (%v) do not match", tc.service, svc.Spec.Selector, d.Spec.Template.Labels)
		}
		if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != tc.port {
			t.Errorf("Service %s ports %+v, want one port %d", tc.service, svc.Spec.Ports, tc.port)
			continue
		}
		got, ok := containerPort(c, svc.Spec.Ports[0].TargetPort)
		if want := flagPort(t, c.Args, tc.flag); !ok || got != want {
			t.Errorf("Service %s targets container port %d (found %v), the manager serves it on %d (--%s)", tc.service, got, ok, want, tc.flag)
		}
	}
}

// checkWebhooks holds every webhook to the manager's Service, the paths the
// handlers serve, and selectors that leave the operator's namespace and
// kube-system alone.
func checkWebhooks(ctx context.Context, t *testing.T) {
	mutating := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := env.Client.Get(ctx, client.ObjectKey{Name: cabundle.DefaultMutatingWebhookConfiguration}, mutating); err != nil {
		t.Fatal(err)
	}
	validating := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := env.Client.Get(ctx, client.ObjectKey{Name: cabundle.DefaultValidatingWebhookConfiguration}, validating); err != nil {
		t.Fatal(err)
	}
	served := []string{handler.PathMutatePod, handler.PathValidateMesh, handler.PathValidateMeshRoute,
		handler.PathValidateDestinationPolicy, handler.PathValidatePeerAuthentication}
	seen := map[string]bool{}
	for _, w := range mutating.Webhooks {
		seen[checkClientConfig(t, w.Name, w.ClientConfig, served)] = true
		checkPolicy(t, w.Name, w.FailurePolicy, w.SideEffects, w.TimeoutSeconds)
		checkPodSelectors(t, w.Name, w.NamespaceSelector, w.ObjectSelector)
	}
	for _, w := range validating.Webhooks {
		seen[checkClientConfig(t, w.Name, w.ClientConfig, served)] = true
		checkPolicy(t, w.Name, w.FailurePolicy, w.SideEffects, w.TimeoutSeconds)
		for _, r := range w.Rules {
			if !slices.Equal(r.APIGroups, []string{meshv1alpha1.GroupVersion.Group}) {
				t.Errorf("validating webhook %s matches groups %v: it may match only Capstan's own kinds", w.Name, r.APIGroups)
			}
		}
	}
	for _, p := range served {
		if !seen[p] {
			t.Errorf("no webhook calls the handler at %s", p)
		}
	}
}

func checkClientConfig(t *testing.T, name string, cc admissionregistrationv1.WebhookClientConfig, served []string) string {
	t.Helper()
	s := cc.Service
	if cc.URL != nil || s == nil {
		t.Errorf("webhook %s calls %+v, want the Service %s/%s", name, cc, operatorNamespace, webhookService)
		return ""
	}
	if s.Namespace != operatorNamespace || s.Name != webhookService || ptr.Deref(s.Port, 443) != 443 {
		t.Errorf("webhook %s calls Service %s/%s port %d, want %s/%s port 443", name, s.Namespace, s.Name, ptr.Deref(s.Port, 443),
			operatorNamespace, webhookService)
	}
	path := ptr.Deref(s.Path, "")
	if !slices.Contains(served, path) {
		t.Errorf("webhook %s calls path %q, which no handler serves (%v)", name, path, served)
	}
	return path
}

func checkPolicy(t *testing.T, name string, fp *admissionregistrationv1.FailurePolicyType, se *admissionregistrationv1.SideEffectClass,
	timeout *int32) {
	t.Helper()
	if fp == nil || *fp != admissionregistrationv1.Fail {
		t.Errorf("webhook %s failurePolicy %v, want Fail", name, fp)
	}
	if se == nil || *se != admissionregistrationv1.SideEffectClassNone {
		t.Errorf("webhook %s sideEffects %v, want None", name, se)
	}
	if timeout == nil || *timeout > 10 {
		t.Errorf("webhook %s timeoutSeconds %v, want at most 10", name, timeout)
	}
}

// checkPodSelectors evaluates a pod webhook's selectors: a pod labelled for
// injection in the operator's namespace or kube-system (even one labelled
// enabled) never reaches it, while one in an enabled namespace does.
func checkPodSelectors(t *testing.T, name string, nsSel, objSel *metav1.LabelSelector) {
	t.Helper()
	nsSelector, err := metav1.LabelSelectorAsSelector(nsSel)
	if err != nil {
		t.Fatalf("webhook %s namespaceSelector: %v", name, err)
	}
	objSelector, err := metav1.LabelSelectorAsSelector(objSel)
	if err != nil {
		t.Fatalf("webhook %s objectSelector: %v", name, err)
	}
	pod := labels.Set{meshv1alpha1.LabelInject: "true"}
	for _, ns := range []string{operatorNamespace, "kube-system"} {
		for _, nsLabels := range []labels.Set{{}, {meshv1alpha1.LabelInject: meshv1alpha1.InjectEnabled}} {
			nsLabels = labels.Merge(nsLabels, labels.Set{corev1.LabelMetadataName: ns})
			if nsSelector.Matches(nsLabels) && objSelector.Matches(pod) {
				t.Errorf("webhook %s matches a pod in namespace %s %v", name, ns, nsLabels)
			}
		}
	}
	enabled := labels.Set{corev1.LabelMetadataName: "shop", meshv1alpha1.LabelInject: meshv1alpha1.InjectEnabled}
	plain := labels.Set{corev1.LabelMetadataName: "shop"}
	if (!nsSelector.Matches(enabled) && !nsSelector.Matches(plain)) || !objSelector.Matches(pod) {
		t.Errorf("webhook %s matches no pod labelled %v in namespace shop, enabled or not", name, pod)
	}
}

// checkDeployment holds the manager's Deployment to what an HA install
// needs; webhookFlag is the flag naming where the webhook certificate comes from.
func checkDeployment(ctx context.Context, t *testing.T, webhookFlag string) {
	d := getDeployment(ctx, t)
	spec := d.Spec.Template.Spec
	c := spec.Containers[0]
	if ptr.Deref(d.Spec.Replicas, 1) < 2 {
		t.Errorf("replicas %d, want at least 2", ptr.Deref(d.Spec.Replicas, 1))
	}
	for _, want := range []string{"--leader-elect", webhookFlag} {
		if !slices.ContainsFunc(c.Args, func(a string) bool { return a == want || strings.HasPrefix(a, want+"=") }) {
			t.Errorf("the manager's args %v lack %s", c.Args, want)
		}
	}
	if a := spec.Affinity; a == nil || a.PodAntiAffinity == nil || len(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 {
		t.Errorf("the manager's pods have no anti-affinity: %+v", spec.Affinity)
	}
	health := flagPort(t, c.Args, "health-probe-bind-address")
	for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("no HTTP %s probe", name)
			continue
		}
		if got, ok := containerPort(c, p.HTTPGet.Port); !ok || got != health {
			t.Errorf("%s probe on port %v, the manager serves probes on %d", name, p.HTTPGet.Port, health)
		}
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v: want CPU and memory requests and a memory limit", c.Resources)
	}
	pdb := &policyv1.PodDisruptionBudget{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: managerName}, pdb); err != nil {
		t.Fatal(err)
	}
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) || pdb.Spec.MinAvailable == nil {
		t.Errorf("the PodDisruptionBudget (%+v, %v) does not keep the manager's pods", pdb.Spec, err)
	}
}

// checkPodSecurity creates (dry run) a pod from the Deployment's template in
// the operator's namespace, which enforces the restricted Pod Security
// Standard; a privileged variant is refused, so the check can fail.
func checkPodSecurity(ctx context.Context, t *testing.T) {
	d := getDeployment(ctx, t)
	ns := &corev1.Namespace{}
	if err := env.Client.Get(ctx, client.ObjectKey{Name: operatorNamespace}, ns); err != nil {
		t.Fatal(err)
	}
	if ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("namespace %s enforces %q, want restricted", operatorNamespace, ns.Labels["pod-security.kubernetes.io/enforce"])
	}
	pod := func() *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, GenerateName: "manager-", Labels: d.Spec.Template.Labels},
			Spec:       *d.Spec.Template.Spec.DeepCopy(),
		}
	}
	if err := env.Client.Create(ctx, pod(), client.DryRunAll); err != nil {
		t.Errorf("the manager's pod is refused in %s: %v", operatorNamespace, err)
	}
	bad := pod()
	bad.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = ptr.To(true)
	if err := env.Client.Create(ctx, bad, client.DryRunAll); !apierrors.IsForbidden(err) {
		t.Errorf("a pod allowing privilege escalation in %s: %v, want Forbidden by Pod Security admission", operatorNamespace, err)
	}
}

// checkCertManager: with config/certmanager, the manager reads the
// Certificate's Secret from the directory OLM would mount it at too, and
// cert-manager injects the webhooks' CA.
func checkCertManager(ctx context.Context, t *testing.T) {
	checkDeployment(ctx, t, "--webhook-cert-dir")
	d := getDeployment(ctx, t)
	c := d.Spec.Template.Spec.Containers[0]
	if dir, _ := flagValue(c.Args, "webhook-cert-dir"); dir != olmWebhookCertDir {
		t.Errorf("--webhook-cert-dir=%s, want %s", dir, olmWebhookCertDir)
	}
	if slices.Contains(c.Args, "--webhook-mesh-certs") {
		t.Errorf("the manager's args %v keep --webhook-mesh-certs", c.Args)
	}
	if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == olmWebhookCertDir }) {
		t.Errorf("nothing is mounted at %s: %+v", olmWebhookCertDir, c.VolumeMounts)
	}
	for _, obj := range []client.Object{
		&admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: cabundle.DefaultMutatingWebhookConfiguration}},
		&admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: cabundle.DefaultValidatingWebhookConfiguration}},
	} {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			t.Fatal(err)
		}
		if got := obj.GetAnnotations()["cert-manager.io/inject-ca-from"]; got != operatorNamespace+"/"+webhookService {
			t.Errorf("%T inject-ca-from %q", obj, got)
		}
	}
}
