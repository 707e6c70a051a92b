package rbac

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/controllers/cabundle"
	"github.com/capstanmesh/capstan/controllers/certificates"
	"github.com/capstanmesh/capstan/controllers/uninjected"
	"github.com/capstanmesh/capstan/test/envtest"
)

// allowList is every permission the operator's roles may grant, one line per
// API group, resource (with /subresource) and, after '#', resource name, with
// its verbs. A rule the generated roles grant that is not here, or a verb
// more, fails TestRolesMatchAllowList; so does a line here that the roles no
// longer grant (keep the list exact). Change it only with the code that needs
// the permission, and say why in docs/security.md ("RBAC").
var allowList = map[string][]string{
	"ClusterRole capstan-manager": {
		// rootca.Publisher: ConfigMaps by name, create cannot be restricted by name.
		"core configmaps create",
		"core configmaps#" + meshv1alpha1.RootCAConfigMapName + " get,list,update,watch",
		// Inputs, injection webhook, status controllers.
		"core namespaces get,list,watch",
		"core pods get,list,watch",
		"core services get,list,watch",
		"discovery.k8s.io endpointslices get,list,watch",
		// cabundle.Injector: Capstan's own webhook configurations only.
		"admissionregistration.k8s.io mutatingwebhookconfigurations#" + cabundle.DefaultMutatingWebhookConfiguration + " get,list,update,watch",
		"admissionregistration.k8s.io validatingwebhookconfigurations#" + cabundle.DefaultValidatingWebhookConfiguration + " get,list,update,watch",
		// uninjected.Reconciler reads workloads (restarting them is capstan-restarter's).
		"apps daemonsets get,list,watch",
		"apps deployments get,list,watch",
		"apps replicasets get,list,watch",
		"apps statefulsets get,list,watch",
		// xDS authentication, and the debug endpoint's callers (TokenReview).
		"authentication.k8s.io tokenreviews create",
		// The debug endpoint authorizes each caller (SubjectAccessReview).
		"authorization.k8s.io subjectaccessreviews create",
		// cert-manager provider with a ClusterIssuer.
		"cert-manager.io clusterissuers get,list,watch",
		// Events of the controllers (events.k8s.io API).
		"events.k8s.io events create,patch",
		// Capstan's API and status.
		"mesh.capstan.dev destinationpolicies get,list,watch",
		"mesh.capstan.dev meshes get,list,watch",
		"mesh.capstan.dev meshroutes get,list,watch",
		"mesh.capstan.dev peerauthentications get,list,watch",
		"mesh.capstan.dev destinationpolicies/status patch,update",
		"mesh.capstan.dev meshes/status patch,update",
		"mesh.capstan.dev meshroutes/status patch,update",
		"mesh.capstan.dev peerauthentications/status patch,update",
	},
	"ClusterRole " + uninjected.RestarterClusterRole: {
		"apps daemonsets patch",
		"apps deployments patch",
		"apps statefulsets patch",
	},
	"Role " + ManifestNamespace + "/capstan-manager": {
		// client-go leader election's Events on its Lease (core/v1 Events).
		"core events create,patch",
		// The built-in CA's Secret, by name; create cannot be restricted by name.
		"core secrets create",
		"core secrets#" + certificates.DefaultRootSecretName + " get,update",
		// cert-manager provider.
		"cert-manager.io certificaterequests create,delete,get,list,watch",
		"cert-manager.io issuers get,list,watch",
		// --leader-elect: create, then read and renew the one Lease.
		"coordination.k8s.io leases create",
		"coordination.k8s.io leases#capstan-manager.capstan.dev get,update",
	},
}

// grants expands rules into allow-list lines, merging the verbs that several
// rules give the same group, resource and name. It reports wildcards and
// non-resource URLs as problems rather than expanding them.
func grants(rules []rbacv1.PolicyRule) (map[string][]string, []string) {
	verbs := map[string][]string{}
	var problems []string
	for i, r := range rules {
		if len(r.NonResourceURLs) > 0 {
			problems = append(problems, fmt.Sprintf("rule %d grants non-resource URLs %v", i, r.NonResourceURLs))
		}
		for _, field := range [][]string{r.APIGroups, r.Resources, r.ResourceNames, r.Verbs} {
			for _, v := range field {
				if v == rbacv1.ResourceAll || strings.Contains(v, "*") {
					problems = append(problems, fmt.Sprintf("rule %d has a wildcard: %+v", i, r))
				}
			}
		}
		names := r.ResourceNames
		if len(names) == 0 {
			names = []string{""}
		}
		for _, g := range r.APIGroups {
			if g == "" {
				g = "core"
			}
			for _, res := range r.Resources {
				for _, n := range names {
					key := g + " " + res
					if n != "" {
						key += "#" + n
					}
					verbs[key] = append(verbs[key], r.Verbs...)
				}
			}
		}
	}
	for k, v := range verbs {
		slices.Sort(v)
		verbs[k] = slices.Compact(v)
	}
	return verbs, problems
}

func parseAllowList(lines []string) map[string][]string {
	out := map[string][]string{}
	for _, l := range lines {
		i := strings.LastIndexByte(l, ' ')
		out[l[:i]] = strings.Split(l[i+1:], ",")
	}
	return out
}

// generatedRoles returns every role of config/rbac and its components by
// "Kind namespace/name".
func generatedRoles(t *testing.T) map[string][]rbacv1.PolicyRule {
	t.Helper()
	root, err := envtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	base, err := Base(root)
	if err != nil {
		t.Fatal(err)
	}
	restarter, err := Restarter(root)
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string][]rbacv1.PolicyRule{}
	for _, m := range []Manifests{base, restarter} {
		for _, r := range m.ClusterRoles {
			roles["ClusterRole "+r.Name] = append(roles["ClusterRole "+r.Name], r.Rules...)
		}
		for _, r := range m.Roles {
			key := "Role " + r.Namespace + "/" + r.Name
			roles[key] = append(roles[key], r.Rules...)
		}
	}
	return roles
}

// TestRolesMatchAllowList holds the generated ClusterRoles and Roles to
// allowList, both ways: no wildcard, no verb, resource or role more, and no
// line that the roles no longer need.
func TestRolesMatchAllowList(t *testing.T) {
	checkAllowList(t, generatedRoles(t))
}

// checkAllowList holds roles ("Kind namespace/name" → rules) to allowList.
func checkAllowList(t *testing.T, roles map[string][]rbacv1.PolicyRule) {
	t.Helper()
	for _, name := range slices.Sorted(maps.Keys(roles)) {
		if _, ok := allowList[name]; !ok {
			t.Errorf("%s is not in the allow-list", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(allowList)) {
		rules, ok := roles[name]
		if !ok {
			t.Errorf("%s is in the allow-list but not generated", name)
			continue
		}
		got, problems := grants(rules)
		for _, p := range problems {
			t.Errorf("%s: %s", name, p)
		}
		want := parseAllowList(allowList[name])
		for _, key := range slices.Sorted(maps.Keys(got)) {
			allowed, ok := want[key]
			if !ok {
				t.Errorf("%s grants %s %v, which the allow-list does not", name, key, got[key])
				continue
			}
			for _, v := range got[key] {
				if !slices.Contains(allowed, v) {
					t.Errorf("%s grants %s %q, which the allow-list does not (it allows %v)", name, key, v, allowed)
				}
			}
		}
		for _, key := range slices.Sorted(maps.Keys(want)) {
			if !slices.Equal(got[key], want[key]) {
				t.Errorf("%s: %s grants %v, the allow-list says %v (keep it exact)", name, key, got[key], want[key])
			}
		}
	}
}

// TestGrantsCatchesWidening checks the checker itself on rules that widen
// the roles the ways this test exists to catch.
func TestGrantsCatchesWidening(t *testing.T) {
	cases := map[string]rbacv1.PolicyRule{
		"wildcard verb":     {APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"*"}},
		"wildcard resource": {APIGroups: []string{"apps"}, Resources: []string{"*"}, Verbs: []string{"get"}},
		"wildcard group":    {APIGroups: []string{"*"}, Resources: []string{"pods"}, Verbs: []string{"get"}},
		"non-resource URL":  {NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}},
	}
	for name, rule := range cases {
		if _, problems := grants([]rbacv1.PolicyRule{rule}); len(problems) == 0 {
			t.Errorf("%s: no problem reported", name)
		}
	}
	got, _ := grants([]rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"update"}},
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"a"}, Verbs: []string{"get"}},
	})
	if !slices.Equal(got["core configmaps"], []string{"update"}) || !slices.Equal(got["core configmaps#a"], []string{"get"}) {
		t.Errorf("an unnamed update must stay apart from a named get: %v", got)
	}
}

// TestBindings checks that the base binds every generated role but
// capstan-restarter to the operator's ServiceAccount, and that only the
// restarter component binds capstan-restarter.
func TestBindings(t *testing.T) {
	root, err := envtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	base, err := Base(root)
	if err != nil {
		t.Fatal(err)
	}
	restarter, err := Restarter(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(base.ServiceAccounts) != 1 || base.ServiceAccounts[0].Namespace != ManifestNamespace {
		t.Fatalf("base ServiceAccounts %+v, want one in %s", base.ServiceAccounts, ManifestNamespace)
	}
	sa := base.ServiceAccounts[0].Name
	bound := func(m Manifests) map[string]bool {
		out := map[string]bool{}
		check := func(binding string, ref rbacv1.RoleRef, subjects []rbacv1.Subject) {
			if len(subjects) != 1 || subjects[0].Kind != rbacv1.ServiceAccountKind || subjects[0].Name != sa ||
				subjects[0].Namespace != ManifestNamespace {
				t.Errorf("%s binds %+v, want only ServiceAccount %s/%s", binding, subjects, ManifestNamespace, sa)
			}
			out[ref.Kind+" "+ref.Name] = true
		}
		for _, b := range m.ClusterRoleBindings {
			check("ClusterRoleBinding "+b.Name, b.RoleRef, b.Subjects)
		}
		for _, b := range m.RoleBindings {
			if b.Namespace != ManifestNamespace {
				t.Errorf("RoleBinding %s is in %s, want %s", b.Name, b.Namespace, ManifestNamespace)
			}
			check("RoleBinding "+b.Name, b.RoleRef, b.Subjects)
		}
		return out
	}
	baseBound, restarterBound := bound(base), bound(restarter)
	restarterRole := "ClusterRole " + uninjected.RestarterClusterRole
	for _, r := range base.ClusterRoles {
		key := "ClusterRole " + r.Name
		if key != restarterRole && !baseBound[key] {
			t.Errorf("the base does not bind %s", key)
		}
	}
	for _, r := range base.Roles {
		if !baseBound["Role "+r.Name] {
			t.Errorf("the base does not bind Role %s", r.Name)
		}
	}
	if baseBound[restarterRole] {
		t.Errorf("the base binds %s: it must be bound only by config/rbac/restarter", restarterRole)
	}
	if !restarterBound[restarterRole] || len(restarterBound) != 1 {
		t.Errorf("config/rbac/restarter binds %v, want exactly %s", restarterBound, restarterRole)
	}
}
