package translate

import (
	"cmp"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/capstanmesh/capstan/xds/ir"
)

// compareAge orders objects oldest first: by creationTimestamp, then by
// namespace/name, so that the winner of a conflict never depends on input order.
func compareAge(a, b metav1.Object) int {
	return cmp.Or(
		a.GetCreationTimestamp().Compare(b.GetCreationTimestamp().Time),
		cmp.Compare(a.GetNamespace(), b.GetNamespace()),
		cmp.Compare(a.GetName(), b.GetName()),
	)
}

// byAge returns pointers to items, oldest first. items are not reordered.
func byAge[T any, P interface {
	*T
	metav1.Object
}](items []T) []P {
	out := make([]P, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	slices.SortStableFunc(out, func(a, b P) int { return compareAge(a, b) })
	return out
}

// owner names the object that won a conflict, as "Kind namespace/name".
func owner(ref ir.ObjectRef) string {
	return ref.Kind + " " + ref.Namespace + "/" + ref.Name
}
