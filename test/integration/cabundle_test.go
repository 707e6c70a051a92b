package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/capstanmesh/capstan/controllers/cabundle"
	"github.com/capstanmesh/capstan/test/envtest"
)

func webhookClientConfig() admissionregistrationv1.WebhookClientConfig {
	return admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://capstan-webhook.example:9443/x")}
}

// caBundles reads the caBundle of every webhook of both configurations.
func caBundles(mutating, validating string) ([]string, error) {
	ctx := context.Background()
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := env.Client.Get(ctx, client.ObjectKey{Name: mutating}, m); err != nil {
		return nil, err
	}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := env.Client.Get(ctx, client.ObjectKey{Name: validating}, v); err != nil {
		return nil, err
	}
	var out []string
	for _, w := range m.Webhooks {
		out = append(out, string(w.ClientConfig.CABundle))
	}
	for _, w := range v.Webhooks {
		out = append(out, string(w.ClientConfig.CABundle))
	}
	return out, nil
}

func waitCABundles(t *testing.T, mutating, validating, want string) {
	t.Helper()
	envtest.Eventually(t, 30*time.Second, func() error {
		got, err := caBundles(mutating, validating)
		if err != nil {
			return err
		}
		for _, b := range got {
			if b != want {
				return fmt.Errorf("caBundles %q, want all %q", got, want)
			}
		}
		return nil
	})
}

func TestCABundleInjectorKeepsWebhookConfigurations(t *testing.T) {
	ctx := context.Background()
	suffix := env.NewNamespace(t) // a unique name for the cluster-scoped objects
	mutating, validating := "capstan-mutating-"+suffix, "capstan-validating-"+suffix
	none := admissionregistrationv1.SideEffectClassNone
	mc := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: mutating},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "inject.capstan.dev", ClientConfig: webhookClientConfig(), SideEffects: &none,
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
	vc := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: validating},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{
			{Name: "a.capstan.dev", ClientConfig: webhookClientConfig(), SideEffects: &none, AdmissionReviewVersions: []string{"v1"}},
			{Name: "b.capstan.dev", ClientConfig: webhookClientConfig(), SideEffects: &none, AdmissionReviewVersions: []string{"v1"}},
		},
	}
	for _, o := range []client.Object{mc, vc} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(ctx, o) })
	}
	src := &bundle{pem: "ROOT-1\n"}
	inj := &cabundle.Injector{Bundle: src, Mutating: mutating, Validating: validating}
	env.StartManager(t, func(mgr ctrl.Manager) error {
		inj.Client = mgr.GetClient()
		return inj.SetupWithManager(mgr)
	})
	waitCABundles(t, mutating, validating, "ROOT-1\n")

	src.set("ROOT-1\nROOT-2\n")
	inj.BundleChanged()
	waitCABundles(t, mutating, validating, "ROOT-1\nROOT-2\n")

	// An edit (say, a re-applied manifest with an empty caBundle) is undone.
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(vc), vc); err != nil {
		t.Fatal(err)
	}
	vc.Webhooks[1].ClientConfig.CABundle = nil
	if err := env.Client.Update(ctx, vc); err != nil {
		t.Fatal(err)
	}
	waitCABundles(t, mutating, validating, "ROOT-1\nROOT-2\n")
}
