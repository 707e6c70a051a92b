package translate

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/xds/ir"
)

// Kinds named in statuses and ir.ObjectRef.
const (
	KindMeshRoute          = "MeshRoute"
	KindDestinationPolicy  = "DestinationPolicy"
	KindPeerAuthentication = "PeerAuthentication"
)

// problem is one reason a condition is False.
type problem struct {
	reason  string
	message string
}

// objectStatus collects what translation found wrong with one object.
type objectStatus struct {
	ref        ir.ObjectRef
	generation int64
	created    time.Time
	// hasRefs is true for kinds that carry ResolvedRefs.
	hasRefs    bool
	invalid    []problem
	conflicted []problem
	unresolved []problem
}

func (s *objectStatus) invalidf(format string, args ...any) {
	s.invalid = append(s.invalid, problem{meshv1alpha1.ReasonInvalid, fmt.Sprintf(format, args...)})
}

func (s *objectStatus) conflictf(format string, args ...any) {
	s.conflicted = append(s.conflicted, problem{meshv1alpha1.ReasonConflicted, fmt.Sprintf(format, args...)})
}

func (s *objectStatus) unresolvedf(reason, format string, args ...any) {
	s.unresolved = append(s.unresolved, problem{reason, fmt.Sprintf(format, args...)})
}

// conditions renders Accepted and, where the kind has references, ResolvedRefs.
func (s *objectStatus) conditions() []metav1.Condition {
	accepted := slices.Concat(s.invalid, s.conflicted)
	out := []metav1.Condition{s.condition(meshv1alpha1.ConditionAccepted, accepted,
		meshv1alpha1.ReasonAccepted, "the object is valid and in the mesh model")}
	if s.hasRefs {
		out = append(out, s.condition(meshv1alpha1.ConditionResolvedRefs, s.unresolved,
			meshv1alpha1.ReasonResolvedRefs, "every reference resolves"))
	}
	return out
}

// condition is True with okReason when there are no problems; otherwise False
// with the first problem's reason and every message, in the order found.
func (s *objectStatus) condition(typ string, problems []problem, okReason, okMessage string) metav1.Condition {
	c := metav1.Condition{
		Type:               typ,
		Status:             metav1.ConditionTrue,
		Reason:             okReason,
		Message:            okMessage,
		ObservedGeneration: s.generation,
	}
	if len(problems) == 0 {
		return c
	}
	msgs := make([]string, len(problems))
	for i, p := range problems {
		msgs[i] = p.message
	}
	c.Status = metav1.ConditionFalse
	c.Reason = problems[0].reason
	c.Message = truncate(strings.Join(msgs, "; "), maxMessageLength)
	return c
}

// maxMessageLength is metav1.Condition's limit on Message.
const maxMessageLength = 32768

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const more = " …"
	return s[:n-len(more)] + more
}

// statusSet holds one objectStatus per object.
type statusSet struct {
	byRef map[ir.ObjectRef]*objectStatus
}

func newStatusSet() *statusSet {
	return &statusSet{byRef: map[ir.ObjectRef]*objectStatus{}}
}

// get returns the status of obj, creating it on first use.
func (s *statusSet) get(kind string, obj metav1.Object, hasRefs bool) *objectStatus {
	ref := objectRef(kind, obj)
	if st, ok := s.byRef[ref]; ok {
		return st
	}
	st := &objectStatus{ref: ref, generation: obj.GetGeneration(), created: obj.GetCreationTimestamp().Time, hasRefs: hasRefs}
	s.byRef[ref] = st
	return st
}

// winner describes the object that won a conflict against loser: "Kind
// namespace/name, which is older", or, for a tie on creationTimestamp,
// "..., which is as old and comes first by namespace/name".
func (s *statusSet) winner(ref ir.ObjectRef, loser *objectStatus) string {
	w := s.byRef[ref]
	if w != nil && w.created.Equal(loser.created) {
		return owner(ref) + ", which is as old and comes first by namespace/name"
	}
	return owner(ref) + ", which is older"
}

// list renders every status, sorted by kind, namespace and name.
func (s *statusSet) list() []ObjectStatus {
	out := make([]ObjectStatus, 0, len(s.byRef))
	for _, st := range s.byRef {
		out = append(out, ObjectStatus{Ref: st.ref, Generation: st.generation, Conditions: st.conditions()})
	}
	slices.SortFunc(out, func(a, b ObjectStatus) int { return compareRefs(a.Ref, b.Ref) })
	return out
}

func objectRef(kind string, obj metav1.Object) ir.ObjectRef {
	return ir.ObjectRef{Kind: kind, Namespace: obj.GetNamespace(), Name: obj.GetName()}
}

func compareRefs(a, b ir.ObjectRef) int {
	return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
}
