package rbac

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/capstanmesh/capstan/controllers/uninjected"
	"github.com/capstanmesh/capstan/test/envtest"
	"github.com/capstanmesh/capstan/test/install"
)

// TestInstallerRolesMatchAllowList holds the roles of dist/install.yaml (what
// `kubectl apply` installs) to the same allow-list as config/rbac: no
// wildcard, writes only on what the operator writes, Secrets only in the
// operator's namespace and only what the built-in CA needs; and it binds the
// manager's roles to the manager's ServiceAccount, the restarter's to nobody.
func TestInstallerRolesMatchAllowList(t *testing.T) {
	root, err := envtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	m, err := install.Installer(root)
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string][]rbacv1.PolicyRule{}
	for _, o := range m.Find("ClusterRole", "") {
		var r rbacv1.ClusterRole
		if err := m.Into("ClusterRole", o.GetName(), &r); err != nil {
			t.Fatal(err)
		}
		roles["ClusterRole "+r.Name] = append(roles["ClusterRole "+r.Name], r.Rules...)
	}
	for _, o := range m.Find("Role", "") {
		var r rbacv1.Role
		if err := m.Into("Role", o.GetName(), &r); err != nil {
			t.Fatal(err)
		}
		key := "Role " + r.Namespace + "/" + r.Name
		roles[key] = append(roles[key], r.Rules...)
	}
	checkAllowList(t, roles)
	manager := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ManifestNamespace, Name: "capstan-manager"}
	var bound []string
	for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
		for _, o := range m.Find(kind, "") {
			var b rbacv1.RoleBinding // the fields compared are the same in both kinds
			if err := m.Into(kind, o.GetName(), &b); err != nil {
				t.Fatal(err)
			}
			if len(b.Subjects) != 1 || b.Subjects[0] != manager {
				t.Errorf("%s %s binds %+v, want the manager's ServiceAccount only", kind, b.Name, b.Subjects)
			}
			bound = append(bound, b.RoleRef.Kind+" "+b.RoleRef.Name)
		}
	}
	for _, b := range bound {
		if b == "ClusterRole "+uninjected.RestarterClusterRole {
			t.Errorf("dist/install.yaml binds %s: only the restarter component may", b)
		}
	}
	if len(bound) != 2 {
		t.Errorf("dist/install.yaml binds %v, want the manager's ClusterRole and Role", bound)
	}
}
