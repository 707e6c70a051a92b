package cli

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/capstanmesh/capstan/cli/analyze"
	"github.com/capstanmesh/capstan/test/envtest"
)

// kubeconfigAs writes a copy of the admin kubeconfig that impersonates user.
func kubeconfigAs(t *testing.T, user string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, auth := range cfg.AuthInfos {
		auth.Impersonate = user
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAnalyzeNamespaceScopedUser: a user who may read one namespace only
// still gets that namespace's findings, and a note on what was not seen.
func TestAnalyzeNamespaceScopedUser(t *testing.T) {
	shop := env.NewNamespace(t)
	state{shop: shop}.uninjectedDeployment(t, "web")
	labelNamespace(t, shop)
	create(t,
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: shop, Name: "reader"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"", "apps", "batch", "networking.k8s.io", "mesh.capstan.dev"},
				Resources: []string{"*"}, Verbs: []string{"get", "list"}}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: shop, Name: "reader"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "reader"},
			Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "shop-dev"}}},
	)
	kubeconfig := kubeconfigAs(t, "shop-dev")
	var out string
	var code int
	envtest.Eventually(t, 30*time.Second, func() error { // the RoleBinding reaches the authorizer's cache
		out, code = capstanctlWith(t, kubeconfig, "analyze", "-n", shop, "-o", "json")
		if code != 1 {
			return &unexpected{code: code, out: out}
		}
		return nil
	})
	res := decodeAnalyze(t, out)
	if find(res, analyze.CodeUninjectedPods, "Deployment "+shop+"/web") == nil {
		t.Errorf("no CAP001 for Deployment %s/web:\n%s", shop, out)
	}
	if !strings.Contains(strings.Join(res.Notes, "\n"), "not allowed to list Pods in every namespace: only namespace "+shop+" was read") {
		t.Errorf("the notes do not say what was not seen: %q", res.Notes)
	}
}

type unexpected struct {
	code int
	out  string
}

func (u *unexpected) Error() string { return fmt.Sprintf("exit status %d, want 1: %s", u.code, u.out) }
