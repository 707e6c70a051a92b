package runner

import (
	"slices"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/xds/generate"
	"github.com/capstanmesh/capstan/xds/ir"
	"github.com/capstanmesh/capstan/xds/translate"
)

// statusTable holds the latest statuses so that proxy ACKs can refresh counts.
type statusTable struct {
	mu       sync.Mutex
	statuses []translate.ObjectStatus
	ready    bool
}

func (t *statusTable) set(s []translate.ObjectStatus) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.statuses, t.ready = s, true
}

func (t *statusTable) get() ([]translate.ObjectStatus, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.statuses, t.ready
}

// withProgrammed adds the Programmed condition: False with the generation
// errors attributed to the object, False when the object is not accepted,
// True otherwise — its message then names the warnings (parts of the object
// left out for one kind of client, such as proxyless gRPC).
func withProgrammed(in []translate.ObjectStatus, genErrs generate.Errors) []translate.ObjectStatus {
	errs, warnings := genErrs.Split()
	bySource, warned := errs.BySource(), warnings.BySource()
	out := make([]translate.ObjectStatus, len(in))
	for i, s := range in {
		s.Conditions = slices.Clone(s.Conditions)
		meta.SetStatusCondition(&s.Conditions, programmed(s, bySource, warned))
		out[i] = s
	}
	return out
}

func programmed(s translate.ObjectStatus, bySource, warnings map[ir.ObjectRef][]error) metav1.Condition {
	c := metav1.Condition{Type: meshv1alpha1.ConditionProgrammed, ObservedGeneration: s.Generation}
	if errs := bySource[s.Ref]; len(errs) > 0 {
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, meshv1alpha1.ReasonTranslationError, joinErrors(errs)
		return c
	}
	if accepted := meta.FindStatusCondition(s.Conditions, meshv1alpha1.ConditionAccepted); accepted != nil && accepted.Status != metav1.ConditionTrue {
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, accepted.Reason, "not programmed: the object is not accepted"
		return c
	}
	c.Status, c.Reason, c.Message = metav1.ConditionTrue, meshv1alpha1.ReasonProgrammed, "config generated and served to the proxies"
	if w := warnings[s.Ref]; len(w) > 0 {
		c.Message += "; left out for some clients: " + joinErrors(w)
	}
	return c
}

func joinErrors(errs []error) string {
	msgs := make([]string, 0, len(errs))
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	slices.Sort(msgs)
	msgs = slices.Compact(msgs)
	const limit = 3
	if len(msgs) > limit {
		msgs = append(msgs[:limit], "…")
	}
	return strings.Join(msgs, "; ")
}
