package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/controllers/cabundle"
	"github.com/capstanmesh/capstan/controllers/certificates"
	"github.com/capstanmesh/capstan/controllers/uninjected"
	"github.com/capstanmesh/capstan/test/envtest"
	"github.com/capstanmesh/capstan/test/rbac"
)

// installBaseRBAC installs config/rbac (without the restarter component)
// for the operator's ServiceAccount in namespace, removes it when t ends,
// and returns the ServiceAccount's user name.
func installBaseRBAC(t *testing.T, namespace string) (string, rbac.Manifests) {
	t.Helper()
	ctx := context.Background()
	base, err := rbac.Base(env.RepoRoot)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := rbac.Install(ctx, env.Client, base, namespace)
	t.Cleanup(func() {
		if err := rbac.Uninstall(context.Background(), env.Client, objs); err != nil {
			t.Errorf("removing the RBAC: %v", err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return rbac.ServiceAccountUser(namespace, base.ServiceAccounts[0].Name), base
}

// webhookConfigurations creates Capstan's two webhook configurations under
// their default names, and a third party's, each with one webhook that
// matches no object; they are deleted when t ends.
func webhookConfigurations(t *testing.T) (mutating, validating, other client.Object) {
	t.Helper()
	hook := func(name string) (admissionregistrationv1.WebhookClientConfig, *metav1.LabelSelector, *admissionregistrationv1.SideEffectClass) {
		return admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://127.0.0.1:1/" + name)},
			&metav1.LabelSelector{MatchLabels: map[string]string{"capstan.dev/test-never": "true"}},
			ptr.To(admissionregistrationv1.SideEffectClassNone)
	}
	mutatingHook := func(name string) admissionregistrationv1.MutatingWebhook {
		cc, sel, se := hook(name)
		return admissionregistrationv1.MutatingWebhook{Name: name + ".test.capstan.dev", ClientConfig: cc, ObjectSelector: sel,
			SideEffects: se, AdmissionReviewVersions: []string{"v1"}, FailurePolicy: ptr.To(admissionregistrationv1.Ignore)}
	}
	cc, sel, se := hook("validate")
	m := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: cabundle.DefaultMutatingWebhookConfiguration},
		Webhooks: []admissionregistrationv1.MutatingWebhook{mutatingHook("inject")}}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: cabundle.DefaultValidatingWebhookConfiguration},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{Name: "validate.test.capstan.dev", ClientConfig: cc, ObjectSelector: sel,
			SideEffects: se, AdmissionReviewVersions: []string{"v1"}, FailurePolicy: ptr.To(admissionregistrationv1.Ignore)}}}
	o := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "someone-elses-webhooks"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{mutatingHook("other")}}
	for _, obj := range []client.Object{m, v, o} {
		if err := env.Client.Create(context.Background(), obj); err != nil {
			t.Fatalf("creating %s: %v", obj.GetName(), err)
		}
		t.Cleanup(func() {
			if err := env.Client.Delete(context.Background(), obj); client.IgnoreNotFound(err) != nil {
				t.Errorf("deleting %s: %v", obj.GetName(), err)
			}
		})
	}
	return m, v, o
}

// TestRunWithGeneratedRBAC runs the operator as its ServiceAccount, bound
// to exactly the roles config/rbac renders (without the restarter
// component), through impersonation against the real API server, with
// leader election and the webhook caBundle injection on. It checks that it
// works: it takes the Lease, publishes the root CA, injects the caBundle of
// its own webhook configurations (and of no other), accepts a MeshRoute,
// reports an uninjected pod on the Mesh, and, asked to restart workloads
// without the restarter binding, says so on the Mesh (condition and Event)
// instead of restarting.
func TestRunWithGeneratedRBAC(t *testing.T) {
	ctx := context.Background()
	operatorNS := env.NewNamespace(t)
	user, _ := installBaseRBAC(t, operatorNS)
	mutating, validating, other := webhookConfigurations(t)
	mesh := &meshv1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: meshv1alpha1.MeshName},
		Spec: meshv1alpha1.MeshSpec{Injection: meshv1alpha1.Injection{RestartUninjected: true}}}
	if err := env.Client.Create(ctx, mesh); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Client.Delete(context.Background(), mesh); client.IgnoreNotFound(err) != nil {
			t.Errorf("deleting the Mesh: %v", err)
		}
	})

	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	probeAddr, xdsAddr, webhookAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	_, webhookPort, _ := net.SplitHostPort(webhookAddr)
	port, err := strconv.Atoi(webhookPort)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- runWithConfig(runCtx, cfg, options{MetricsAddr: "0", ProbeAddr: probeAddr, Namespace: operatorNS, XDSAddr: xdsAddr,
			LeaderElect: true, WebhookMeshCerts: true, WebhookPort: port, reuseControllerNames: true,
			MutatingWebhookConfiguration:   cabundle.DefaultMutatingWebhookConfiguration,
			ValidatingWebhookConfiguration: cabundle.DefaultValidatingWebhookConfiguration})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	checkLeaseHeld(t, operatorNS)
	_, roots := checkXDSServing(t, operatorNS, xdsAddr)
	checkCABundles(t, roots, mutating, validating, other)
	checkMeshRouteAccepted(t)
	checkRestartForbidden(t)
}

func checkLeaseHeld(t *testing.T, namespace string) {
	t.Helper()
	envtest.Eventually(t, 30*time.Second, func() error {
		lease := &coordinationv1.Lease{}
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: leaderElectionID}, lease); err != nil {
			return err
		}
		if ptr.Deref(lease.Spec.HolderIdentity, "") == "" {
			return errors.New("the Lease has no holder")
		}
		return nil
	})
}

// checkCABundles waits for the mesh root (the PEM the root CA ConfigMap
// holds, which verified the xDS server) in every webhook of Capstan's two
// configurations, and checks that the third party's is untouched.
func checkCABundles(t *testing.T, roots []byte, mutating, validating, other client.Object) {
	t.Helper()
	ctx := context.Background()
	envtest.Eventually(t, 30*time.Second, func() error {
		m := &admissionregistrationv1.MutatingWebhookConfiguration{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(mutating), m); err != nil {
			return err
		}
		v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(validating), v); err != nil {
			return err
		}
		if !bytes.Equal(m.Webhooks[0].ClientConfig.CABundle, roots) || !bytes.Equal(v.Webhooks[0].ClientConfig.CABundle, roots) {
			return errors.New("the webhook configurations do not carry the mesh root yet")
		}
		return nil
	})
	o := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(other), o); err != nil {
		t.Fatal(err)
	}
	if len(o.Webhooks[0].ClientConfig.CABundle) != 0 {
		t.Errorf("%s got a caBundle", o.Name)
	}
}

func checkMeshRouteAccepted(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	ns := env.NewNamespace(t)
	mr := &meshv1alpha1.MeshRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "reviews"},
		Spec: meshv1alpha1.MeshRouteSpec{
			Hosts: []string{"reviews"},
			HTTP:  []meshv1alpha1.HTTPRule{{Route: []meshv1alpha1.Destination{{Host: "reviews"}}}},
		},
	}
	if err := env.Client.Create(ctx, mr); err != nil {
		t.Fatal(err)
	}
	envtest.Eventually(t, 30*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(mr), mr); err != nil {
			return err
		}
		if !meta.IsStatusConditionTrue(mr.Status.Conditions, meshv1alpha1.ConditionAccepted) {
			return errors.New("MeshRoute not accepted yet")
		}
		return nil
	})
}

// checkRestartForbidden creates a Deployment whose running pod has no
// sidecar in an injection-enabled namespace, and waits for the Mesh to
// report it and to say that restarts are forbidden (condition and Warning
// Event); the Deployment is not restarted.
func checkRestartForbidden(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	ns := env.NewNamespace(t)
	labelled := &corev1.Namespace{}
	if err := env.Client.Get(ctx, client.ObjectKey{Name: ns}, labelled); err != nil {
		t.Fatal(err)
	}
	labelled.Labels[meshv1alpha1.LabelInject] = meshv1alpha1.InjectEnabled
	if err := env.Client.Update(ctx, labelled); err != nil {
		t.Fatal(err)
	}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "example.com/web:1"}}}},
		},
	}
	if err := env.Client.Create(ctx, dep); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bare"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "example.com/web:1"}}}}
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase = corev1.PodRunning
	if err := env.Client.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
	mesh := &meshv1alpha1.Mesh{}
	envtest.Eventually(t, 30*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKey{Name: meshv1alpha1.MeshName}, mesh); err != nil {
			return err
		}
		c := meta.FindStatusCondition(mesh.Status.Conditions, meshv1alpha1.ConditionRestartUninjected)
		switch {
		case mesh.Status.UninjectedPods < 1:
			return fmt.Errorf("status.uninjectedPods %d, want the bare pod", mesh.Status.UninjectedPods)
		case c == nil || c.Status != metav1.ConditionFalse || c.Reason != meshv1alpha1.ReasonRestartForbidden:
			return fmt.Errorf("condition %s is %+v, want False/%s", meshv1alpha1.ConditionRestartUninjected, c, meshv1alpha1.ReasonRestartForbidden)
		}
		return nil
	})
	envtest.Eventually(t, 30*time.Second, func() error {
		list := &eventsv1.EventList{}
		if err := env.Client.List(ctx, list); err != nil {
			return err
		}
		for _, e := range list.Items {
			if e.Regarding.Kind == "Mesh" && e.Reason == meshv1alpha1.ReasonRestartForbidden && e.Type == corev1.EventTypeWarning {
				return nil
			}
		}
		return errors.New("no RestartForbidden Event on the Mesh")
	})
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(dep), dep); err != nil {
		t.Fatal(err)
	}
	if _, ok := dep.Spec.Template.Annotations[uninjected.AnnotationRestartedAt]; ok {
		t.Error("the Deployment was restarted without the restarter binding")
	}
}

// TestGeneratedRolesAllowWhatTheCodeDoes asks the API server's RBAC
// authorizer (SubjectAccessReview) about the operator's ServiceAccount,
// bound as config/rbac binds it, and then with the restarter component: it
// may do what the code does, and not the wider things the old roles
// allowed.
func TestGeneratedRolesAllowWhatTheCodeDoes(t *testing.T) {
	ctx := context.Background()
	operatorNS := env.NewNamespace(t)
	user, _ := installBaseRBAC(t, operatorNS)
	type attrs = authorizationv1.ResourceAttributes
	allowed := []attrs{
		{Verb: "create", Resource: "configmaps", Namespace: "app"},
		{Verb: "update", Resource: "configmaps", Namespace: "app", Name: meshv1alpha1.RootCAConfigMapName},
		{Verb: "watch", Resource: "configmaps", Name: meshv1alpha1.RootCAConfigMapName},
		{Verb: "list", Resource: "configmaps", Name: meshv1alpha1.RootCAConfigMapName},
		{Verb: "update", Group: "admissionregistration.k8s.io", Resource: "mutatingwebhookconfigurations", Name: cabundle.DefaultMutatingWebhookConfiguration},
		{Verb: "update", Group: "admissionregistration.k8s.io", Resource: "validatingwebhookconfigurations", Name: cabundle.DefaultValidatingWebhookConfiguration},
		{Verb: "list", Group: "apps", Resource: "deployments"},
		{Verb: "create", Resource: "secrets", Namespace: operatorNS},
		{Verb: "get", Resource: "secrets", Namespace: operatorNS, Name: certificates.DefaultRootSecretName},
		{Verb: "update", Resource: "secrets", Namespace: operatorNS, Name: certificates.DefaultRootSecretName},
		{Verb: "create", Group: "coordination.k8s.io", Resource: "leases", Namespace: operatorNS},
		{Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Namespace: operatorNS, Name: leaderElectionID},
		{Verb: "create", Group: "authentication.k8s.io", Resource: "tokenreviews"},
		{Verb: "patch", Group: "mesh.capstan.dev", Resource: "meshroutes", Subresource: "status", Namespace: "app"},
	}
	denied := []attrs{
		{Verb: "update", Resource: "configmaps", Namespace: "app", Name: "app-settings"},
		{Verb: "get", Resource: "configmaps", Namespace: "kube-system", Name: "extension-apiserver-authentication"},
		{Verb: "list", Resource: "configmaps"},
		{Verb: "delete", Resource: "configmaps", Namespace: "app", Name: meshv1alpha1.RootCAConfigMapName},
		{Verb: "update", Group: "admissionregistration.k8s.io", Resource: "mutatingwebhookconfigurations", Name: "someone-elses-webhooks"},
		{Verb: "list", Group: "admissionregistration.k8s.io", Resource: "validatingwebhookconfigurations"},
		{Verb: "create", Group: "admissionregistration.k8s.io", Resource: "mutatingwebhookconfigurations"},
		{Verb: "patch", Group: "apps", Resource: "deployments", Namespace: "app", Name: "web"},
		{Verb: "patch", Group: "apps", Resource: "statefulsets", Namespace: "app", Name: "db"},
		{Verb: "patch", Group: "apps", Resource: "daemonsets", Namespace: "app", Name: "agent"},
		{Verb: "get", Resource: "secrets", Namespace: operatorNS, Name: "other"},
		{Verb: "get", Resource: "secrets", Namespace: "app", Name: certificates.DefaultRootSecretName},
		{Verb: "list", Resource: "secrets", Namespace: operatorNS},
		{Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Namespace: operatorNS, Name: "another-controller"},
		{Verb: "create", Group: "coordination.k8s.io", Resource: "leases", Namespace: "app"},
		{Verb: "update", Group: "mesh.capstan.dev", Resource: "meshroutes", Namespace: "app", Name: "r"},
		{Verb: "create", Resource: "pods", Namespace: "app"},
	}
	checkAccess(ctx, t, user, allowed, true)
	checkAccess(ctx, t, user, denied, false)

	restarter, err := rbac.Restarter(env.RepoRoot)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := rbac.Install(ctx, env.Client, restarter, operatorNS)
	t.Cleanup(func() {
		if err := rbac.Uninstall(context.Background(), env.Client, objs); err != nil {
			t.Errorf("removing the restarter binding: %v", err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	checkAccess(ctx, t, user, denied[7:10], true) // patch on the three workload kinds
	checkAccess(ctx, t, user, []attrs{
		{Verb: "update", Group: "apps", Resource: "deployments", Namespace: "app", Name: "web"},
		{Verb: "patch", Group: "apps", Resource: "replicasets", Namespace: "app", Name: "web-1"},
	}, false)
}

// checkAccess polls until every review answers want (the RBAC authorizer
// sees new bindings through its informers, a moment after they are made).
func checkAccess(ctx context.Context, t *testing.T, user string, list []authorizationv1.ResourceAttributes, want bool) {
	t.Helper()
	for _, a := range list {
		envtest.Eventually(t, 10*time.Second, func() error {
			got, err := rbac.Allowed(ctx, env.Client, user, a)
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("%s %s/%s %s/%s name %q: allowed %v, want %v", a.Verb, a.Group, a.Resource, a.Subresource, a.Namespace, a.Name, got, want)
			}
			return nil
		})
	}
}
