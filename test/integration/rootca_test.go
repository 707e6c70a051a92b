package integration

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/controllers/rootca"
	"github.com/capstanmesh/capstan/test/envtest"
)

// bundle is a BundleSource whose bundle the test sets.
type bundle struct {
	mu  sync.Mutex
	pem string
}

func (b *bundle) TrustBundle(context.Context) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return []byte(b.pem), nil
}

func (b *bundle) set(pem string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pem = pem
}

func rootCAData(ns string) (string, error) {
	var cm corev1.ConfigMap
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: meshv1alpha1.RootCAConfigMapName}, &cm)
	if err != nil {
		return "", err
	}
	return cm.Data[meshv1alpha1.RootCAConfigMapKey], nil
}

func waitRootCA(t *testing.T, ns, want string) {
	t.Helper()
	envtest.Eventually(t, 30*time.Second, func() error {
		got, err := rootCAData(ns)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("ConfigMap %s/%s holds %q, want %q", ns, meshv1alpha1.RootCAConfigMapName, got, want)
		}
		return nil
	})
}

func TestRootCAIsPublishedInEnabledNamespaces(t *testing.T) {
	ctx := context.Background()
	enabled, plain := env.NewNamespace(t), env.NewNamespace(t)
	setLabel(t, enabled, meshv1alpha1.InjectEnabled)
	src := &bundle{pem: "ROOT-1\n"}
	pub := &rootca.Publisher{Bundle: src}
	env.StartManager(t, func(mgr ctrl.Manager) error {
		pub.Client, pub.Reader = mgr.GetClient(), mgr.GetAPIReader()
		return pub.SetupWithManager(mgr)
	}, enabled, plain)

	waitRootCA(t, enabled, "ROOT-1\n")
	if _, err := rootCAData(plain); !apierrors.IsNotFound(err) {
		t.Errorf("namespace without injection: %v, want no ConfigMap", err)
	}

	// A new bundle (a root rotation's stage) reaches the namespace.
	src.set("ROOT-1\nROOT-2\n")
	pub.BundleChanged()
	waitRootCA(t, enabled, "ROOT-1\nROOT-2\n")

	// Edits and deletions are undone.
	cm := &corev1.ConfigMap{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: enabled, Name: meshv1alpha1.RootCAConfigMapName}, cm); err != nil {
		t.Fatal(err)
	}
	cm.Data[meshv1alpha1.RootCAConfigMapKey] = "tampered"
	if err := env.Client.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	waitRootCA(t, enabled, "ROOT-1\nROOT-2\n")
	if err := env.Client.Delete(ctx, cm); err != nil {
		t.Fatal(err)
	}
	waitRootCA(t, enabled, "ROOT-1\nROOT-2\n")

	// Labelling a namespace publishes there too.
	setLabel(t, plain, meshv1alpha1.InjectEnabled)
	waitRootCA(t, plain, "ROOT-1\nROOT-2\n")
}

func setLabel(t *testing.T, ns, value string) {
	t.Helper()
	var obj corev1.Namespace
	if err := env.Client.Get(context.Background(), client.ObjectKey{Name: ns}, &obj); err != nil {
		t.Fatal(err)
	}
	obj.Labels[meshv1alpha1.LabelInject] = value
	if err := env.Client.Update(context.Background(), &obj); err != nil {
		t.Fatal(err)
	}
}
