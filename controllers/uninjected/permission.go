package uninjected

import (
	"context"
	"fmt"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// RestarterClusterRole is the ClusterRole that lets the operator restart
// workloads (patch Deployments, StatefulSets and DaemonSets). It is generated
// into config/rbac/role.yaml with the operator's own roles, and bound only by
// the kustomize component config/rbac/restarter, for clusters that set
// Mesh.spec.injection.restartUninjected.
const RestarterClusterRole = "capstan-restarter"

// DefaultPermissionTTL is how long a restart permission check holds, and how
// soon a forbidden one is checked again.
const DefaultPermissionTTL = 30 * time.Second

// restartedKinds are the resources restartNext patches.
var restartedKinds = []string{"deployments", "statefulsets", "daemonsets"}

// restartPermission is the last answer to "may the operator restart
// workloads": allowed, or the reason it may not.
type restartPermission struct {
	checked time.Time
	allowed bool
	reason  string
}

// condition is the Mesh's RestartUninjected condition for p.
func (p restartPermission) condition(generation int64) metav1.Condition {
	if p.allowed {
		return metav1.Condition{Type: meshv1alpha1.ConditionRestartUninjected, Status: metav1.ConditionTrue,
			Reason: meshv1alpha1.ReasonRestartPermitted, ObservedGeneration: generation,
			Message: "the operator may restart Deployments, StatefulSets and DaemonSets whose pods lack the current sidecar"}
	}
	return metav1.Condition{Type: meshv1alpha1.ConditionRestartUninjected, Status: metav1.ConditionFalse,
		Reason: meshv1alpha1.ReasonRestartForbidden, ObservedGeneration: generation,
		Message: truncate(fmt.Sprintf("spec.injection.restartUninjected is true, but %s: bind the ClusterRole %s to the operator's "+
			"ServiceAccount (kustomize component config/rbac/restarter); until then pods without the current sidecar are reported, not restarted",
			p.reason, RestarterClusterRole), 1000)}
}

// restartForbiddenError is restartNext's answer when the API server refused
// the restart patch as forbidden.
type restartForbiddenError struct {
	workload WorkloadRef
	err      error
}

func (e *restartForbiddenError) Error() string {
	return fmt.Sprintf("the operator may not patch %s (%s)", e.workload, e.err.Error())
}

func (e *restartForbiddenError) Unwrap() error { return e.err }

func (r *Reconciler) permissionTTL() time.Duration {
	if r.PermissionTTL > 0 {
		return r.PermissionTTL
	}
	return DefaultPermissionTTL
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// checkRestartPermission asks the API server, with a SelfSubjectAccessReview
// per kind (which needs no grant), whether the operator may patch
// Deployments, StatefulSets and DaemonSets in every namespace. The answer is
// kept for permissionTTL. When the review itself fails, the restarts are
// tried: a forbidden patch is caught there.
func (r *Reconciler) checkRestartPermission(ctx context.Context) restartPermission {
	if !r.permission.checked.IsZero() && r.now().Sub(r.permission.checked) < r.permissionTTL() {
		return r.permission
	}
	p := restartPermission{checked: r.now(), allowed: true}
	var denied []string
	for _, resource := range restartedKinds {
		review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{Group: "apps", Resource: resource, Verb: "patch"},
		}}
		if err := r.Client.Create(ctx, review); err != nil {
			log.FromContext(ctx).V(1).Info("cannot check the restart permission; trying the restarts", "error", err.Error())
			return p
		}
		if !review.Status.Allowed {
			denied = append(denied, resource+".apps")
		}
	}
	if len(denied) > 0 {
		p.allowed = false
		p.reason = "the operator may not patch " + strings.Join(denied, ", ") + " in every namespace"
	}
	r.permission = p
	return p
}

// truncate cuts s to n bytes, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
