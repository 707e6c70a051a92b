// Package rbac loads the operator's RBAC manifests as config/rbac lays them
// out (the generated roles, the bindings, the restarter component), installs
// them for a ServiceAccount in a test's API server, and asks that server what
// the ServiceAccount may do. Tests use it to hold the roles to an allow-list
// and to run the operator with exactly these permissions.
package rbac

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// ManifestNamespace is the namespace config/rbac puts the operator's
// ServiceAccount and Roles in (a kustomize overlay's namespace replaces it).
const ManifestNamespace = "capstan-system"

// Manifests are RBAC objects read from kustomizations.
type Manifests struct {
	ServiceAccounts     []corev1.ServiceAccount
	ClusterRoles        []rbacv1.ClusterRole
	Roles               []rbacv1.Role
	ClusterRoleBindings []rbacv1.ClusterRoleBinding
	RoleBindings        []rbacv1.RoleBinding
}

// Base reads config/rbac under the repository root: the objects an install
// without the restarter component gets.
func Base(root string) (Manifests, error) {
	return Load(filepath.Join(root, "config", "rbac"))
}

// Restarter reads the component config/rbac/restarter alone.
func Restarter(root string) (Manifests, error) {
	return Load(filepath.Join(root, "config", "rbac", "restarter"))
}

// Load reads the kustomization in dir: every file its resources list, and
// the kustomizations of the directories it lists, recursively. It refuses
// what it does not model (patches, generators, name prefixes, a namespace),
// so that the objects it returns are the ones kustomize renders.
func Load(dir string) (Manifests, error) {
	var m Manifests
	return m, m.load(dir)
}

type kustomization struct {
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
	Components []string `json:"components"`
}

var modelled = map[string]bool{"apiVersion": true, "kind": true, "resources": true, "components": true}

func (m *Manifests) load(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return fmt.Errorf("reading the kustomization: %w", err)
	}
	var k kustomization
	if err := yaml.Unmarshal(data, &k); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	var all map[string]any
	if err := yaml.Unmarshal(data, &all); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	for key := range all {
		if !modelled[key] {
			return fmt.Errorf("%s/kustomization.yaml: field %q is not modelled by test/rbac", dir, key)
		}
	}
	for _, r := range append(k.Resources, k.Components...) {
		path := filepath.Join(dir, r)
		st, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("%s/kustomization.yaml lists %s: %w", dir, r, err)
		}
		if st.IsDir() {
			err = m.load(path)
		} else {
			err = m.loadFile(path)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

func (m *Manifests) loadFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	for _, doc := range docSeparator.Split(string(data), -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		if err := m.add([]byte(doc)); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	return nil
}

func (m *Manifests) add(doc []byte) error {
	var meta struct {
		Kind string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		return err
	}
	switch meta.Kind {
	case "":
		return nil // comments only
	case "ServiceAccount":
		return addStrict(doc, &m.ServiceAccounts)
	case "ClusterRole":
		return addStrict(doc, &m.ClusterRoles)
	case "Role":
		return addStrict(doc, &m.Roles)
	case "ClusterRoleBinding":
		return addStrict(doc, &m.ClusterRoleBindings)
	case "RoleBinding":
		return addStrict(doc, &m.RoleBindings)
	}
	return fmt.Errorf("unexpected kind %s", meta.Kind)
}

func addStrict[T any](doc []byte, to *[]T) error {
	var obj T
	if err := yaml.UnmarshalStrict(doc, &obj); err != nil {
		return err
	}
	*to = append(*to, obj)
	return nil
}

// Merge returns m with the objects of others appended (a base and its components).
func (m Manifests) Merge(others ...Manifests) Manifests {
	for _, o := range others {
		m.ServiceAccounts = append(m.ServiceAccounts, o.ServiceAccounts...)
		m.ClusterRoles = append(m.ClusterRoles, o.ClusterRoles...)
		m.Roles = append(m.Roles, o.Roles...)
		m.ClusterRoleBindings = append(m.ClusterRoleBindings, o.ClusterRoleBindings...)
		m.RoleBindings = append(m.RoleBindings, o.RoleBindings...)
	}
	return m
}

// ServiceAccountUser is the user name the API server gives a ServiceAccount.
func ServiceAccountUser(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}

// Install creates m's objects through c, as a kustomize overlay with
// `namespace: namespace` would: ServiceAccounts, Roles, RoleBindings and the
// ServiceAccount subjects of every binding move from ManifestNamespace to
// namespace (which must exist). Cluster-scoped objects keep their names and
// are replaced if they exist. It returns the objects created, for Uninstall.
func Install(ctx context.Context, c client.Client, m Manifests, namespace string) ([]client.Object, error) {
	var objs []client.Object
	for i := range m.ServiceAccounts {
		o := m.ServiceAccounts[i].DeepCopy()
		o.Namespace = namespace
		objs = append(objs, o)
	}
	for i := range m.ClusterRoles {
		objs = append(objs, m.ClusterRoles[i].DeepCopy())
	}
	for i := range m.Roles {
		o := m.Roles[i].DeepCopy()
		o.Namespace = namespace
		objs = append(objs, o)
	}
	for i := range m.ClusterRoleBindings {
		o := m.ClusterRoleBindings[i].DeepCopy()
		moveSubjects(o.Subjects, namespace)
		objs = append(objs, o)
	}
	for i := range m.RoleBindings {
		o := m.RoleBindings[i].DeepCopy()
		o.Namespace = namespace
		moveSubjects(o.Subjects, namespace)
		objs = append(objs, o)
	}
	for _, o := range objs {
		if err := createOrReplace(ctx, c, o); err != nil {
			return objs, err
		}
	}
	return objs, nil
}

func moveSubjects(subjects []rbacv1.Subject, namespace string) {
	for i := range subjects {
		if subjects[i].Kind == rbacv1.ServiceAccountKind && subjects[i].Namespace == ManifestNamespace {
			subjects[i].Namespace = namespace
		}
	}
}

func createOrReplace(ctx context.Context, c client.Client, o client.Object) error {
	err := c.Create(ctx, o)
	if !apierrors.IsAlreadyExists(err) {
		return wrapObject(err, o)
	}
	if err := c.Delete(ctx, o); client.IgnoreNotFound(err) != nil {
		return wrapObject(err, o)
	}
	o.SetResourceVersion("")
	return wrapObject(c.Create(ctx, o), o)
}

func wrapObject(err error, o client.Object) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("installing %T %s: %w", o, client.ObjectKeyFromObject(o), err)
}

// Uninstall deletes objects Install created.
func Uninstall(ctx context.Context, c client.Client, objs []client.Object) error {
	var errs []error
	for _, o := range objs {
		if err := c.Delete(ctx, o); client.IgnoreNotFound(err) != nil {
			errs = append(errs, wrapObject(err, o))
		}
	}
	return errors.Join(errs...)
}

// Allowed asks the API server whether user may do what attrs describe (a
// SubjectAccessReview, answered by the real RBAC authorizer). user is taken
// to be a ServiceAccount: its groups are the ones the API server gives every
// ServiceAccount.
func Allowed(ctx context.Context, c client.Client, user string, attrs authorizationv1.ResourceAttributes) (bool, error) {
	groups := []string{"system:authenticated", "system:serviceaccounts"}
	if parts := strings.Split(user, ":"); len(parts) == 4 {
		groups = append(groups, "system:serviceaccounts:"+parts[2])
	}
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user, Groups: groups, ResourceAttributes: &attrs,
	}}
	if err := c.Create(ctx, review); err != nil {
		return false, fmt.Errorf("creating a SubjectAccessReview: %w", err)
	}
	return review.Status.Allowed, nil
}
