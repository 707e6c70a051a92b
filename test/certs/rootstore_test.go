package certs

import (
	"context"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/capstanmesh/capstan/controllers/certificates"
	"github.com/capstanmesh/capstan/pki/builtin"
)

// TestSecretRootStore: the first start creates the root's Secret (one of
// two concurrent starts wins, both use its root), a restart reuses it, and
// a Secret holding junk is refused and left alone.
func TestSecretRootStore(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"root-race", "root-junk", "root-empty"} {
		t.Cleanup(func() {
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: name}}
			if err := env.Client.Delete(ctx, s); client.IgnoreNotFound(err) != nil {
				t.Errorf("deleting Secret %s: %v", name, err)
			}
		})
	}
	store := func(name string) *certificates.SecretRootStore {
		return &certificates.SecretRootStore{Client: env.Client, Namespace: operatorNamespace, Name: name}
	}
	var (
		wg   sync.WaitGroup
		cas  [2]*builtin.CA
		errs [2]error
	)
	for i := range cas {
		wg.Go(func() { cas[i], errs[i] = builtin.New(ctx, store("root-race"), builtin.Options{}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
	}
	if !cas[0].ActiveRoot().Equal(cas[1].ActiveRoot()) {
		t.Fatal("two concurrent first starts use different roots")
	}
	restarted, err := builtin.New(ctx, store("root-race"), builtin.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !restarted.ActiveRoot().Equal(cas[0].ActiveRoot()) {
		t.Error("a restart made a new root instead of reusing the stored one")
	}
	if err := restarted.StageRotation(ctx); err != nil {
		t.Fatalf("saving a staged root (an Update): %v", err)
	}

	junk := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: "root-junk"},
		Data:       map[string][]byte{certificates.RootSecretCertKey: []byte("junk"), certificates.RootSecretKeyKey: []byte("junk")},
	}
	if err := env.Client.Create(ctx, junk); err != nil {
		t.Fatal(err)
	}
	if _, err := builtin.New(ctx, store("root-junk"), builtin.Options{}); err == nil {
		t.Fatal("a Secret holding junk was accepted")
	}
	after := &corev1.Secret{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(junk), after); err != nil {
		t.Fatal(err)
	}
	if string(after.Data[certificates.RootSecretCertKey]) != "junk" || after.ResourceVersion != junk.ResourceVersion {
		t.Error("the junk Secret was overwritten")
	}
	empty := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: "root-empty"}}
	if err := env.Client.Create(ctx, empty); err != nil {
		t.Fatal(err)
	}
	if _, err := builtin.New(ctx, store("root-empty"), builtin.Options{}); err == nil {
		t.Fatal("a Secret without the root's keys was accepted")
	}
}
