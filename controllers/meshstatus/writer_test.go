package meshstatus

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// events records what was recorded, as "type reason action".
type events []string

func (e *events) Eventf(_, _ runtime.Object, eventtype, reason, action, _ string, _ ...any) {
	*e = append(*e, eventtype+" "+reason+" "+action)
}

func (e *events) AnnotatedEventf(regarding, related runtime.Object, _ map[string]string, eventtype, reason, action, note string, args ...any) {
	e.Eventf(regarding, related, eventtype, reason, action, note, args...)
}

// fixture is a Writer over a fake client holding a Mesh at generation 3,
// counting status writes.
func fixture(t *testing.T) (*Writer, client.Client, *int, *events) {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := meshv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	mesh := &meshv1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: meshv1alpha1.MeshName, Generation: 3}}
	writes := 0
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(mesh).WithStatusSubresource(mesh).
		WithInterceptorFuncs(interceptor.Funcs{
			SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
				writes++
				return c.SubResource(sub).Update(ctx, obj, opts...)
			},
		}).Build()
	rec := &events{}
	return NewWriter(c, nil, rec), c, &writes, rec
}

func issuer(status metav1.ConditionStatus, reason string) Part {
	return Part{Source: "certificates",
		Conditions: []metav1.Condition{{Type: meshv1alpha1.ConditionIssuerReady, Status: status, Reason: reason, Message: reason}},
		Events:     map[string]string{meshv1alpha1.ConditionIssuerReady: "IssueCertificate"}}
}

func readMesh(t *testing.T, c client.Client) *meshv1alpha1.Mesh {
	t.Helper()
	m := &meshv1alpha1.Mesh{}
	if err := c.Get(context.Background(), client.ObjectKey{Name: meshv1alpha1.MeshName}, m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestWriteOnlyOnChange: a part is written once with the Mesh's
// generation; the same part again writes nothing; Events follow the
// condition's changes.
func TestWriteOnlyOnChange(t *testing.T) {
	w, c, writes, rec := fixture(t)
	ctx := context.Background()
	steps := []Part{
		issuer(metav1.ConditionTrue, meshv1alpha1.ReasonIssuerReady),
		issuer(metav1.ConditionTrue, meshv1alpha1.ReasonIssuerReady),
		issuer(metav1.ConditionFalse, meshv1alpha1.ReasonIssuerNotReady),
		issuer(metav1.ConditionFalse, meshv1alpha1.ReasonIssuerNotReady),
		issuer(metav1.ConditionTrue, meshv1alpha1.ReasonIssuerReady),
	}
	var wrote []bool
	for _, p := range steps {
		ok, err := w.Write(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		wrote = append(wrote, ok)
	}
	if diff := cmp.Diff([]bool{true, false, true, false, true}, wrote); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
	if *writes != 3 {
		t.Errorf("%d status updates, want 3", *writes)
	}
	want := events{"Warning IssuerNotReady IssueCertificate", "Normal IssuerReady IssueCertificate"}
	if diff := cmp.Diff(want, *rec); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	got := meta.FindStatusCondition(readMesh(t, c).Status.Conditions, meshv1alpha1.ConditionIssuerReady)
	if got == nil || got.ObservedGeneration != 3 {
		t.Errorf("IssuerReady %+v, want observedGeneration 3", got)
	}
}

// TestPartsMerge: parts of different reporters live side by side; a part
// of an older generation is dropped; Remove and Fields apply.
func TestPartsMerge(t *testing.T) {
	w, c, writes, _ := fixture(t)
	ctx := context.Background()
	restart := metav1.Condition{Type: meshv1alpha1.ConditionRestartUninjected, Status: metav1.ConditionTrue,
		Reason: meshv1alpha1.ReasonRestartPermitted, Message: "ok"}
	counts := func(n int32) func(*meshv1alpha1.MeshStatus) bool {
		return func(st *meshv1alpha1.MeshStatus) bool {
			if st.UninjectedPods == n {
				return false
			}
			st.UninjectedPods = n
			return true
		}
	}
	parts := []Part{
		issuer(metav1.ConditionTrue, meshv1alpha1.ReasonIssuerReady),
		{Source: "uninjected", Generation: 3, Conditions: []metav1.Condition{restart}, Fields: counts(2)},
		{Source: "uninjected", Generation: 2, Fields: counts(7)}, // computed from an older Mesh: dropped
		{Source: "uninjected", Generation: 3, Remove: []string{meshv1alpha1.ConditionRestartUninjected}, Fields: counts(2)},
	}
	for _, p := range parts {
		if _, err := w.Write(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	m := readMesh(t, c)
	var types []string
	for _, cond := range m.Status.Conditions {
		types = append(types, fmt.Sprintf("%s@%d", cond.Type, cond.ObservedGeneration))
	}
	if diff := cmp.Diff([]string{meshv1alpha1.ConditionIssuerReady + "@3"}, types); diff != "" {
		t.Errorf("conditions (-want +got):\n%s", diff)
	}
	if m.Status.UninjectedPods != 2 {
		t.Errorf("uninjectedPods %d, want 2 (the older generation's 7 dropped)", m.Status.UninjectedPods)
	}
	if *writes != 3 {
		t.Errorf("%d status updates, want 3", *writes)
	}
}

// TestMissingMesh: without a Mesh nothing is written and nothing fails.
func TestMissingMesh(t *testing.T) {
	w, c, writes, _ := fixture(t)
	if err := c.Delete(context.Background(), &meshv1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: meshv1alpha1.MeshName}}); err != nil {
		t.Fatal(err)
	}
	ok, err := w.Write(context.Background(), issuer(metav1.ConditionTrue, meshv1alpha1.ReasonIssuerReady))
	if err != nil || ok || *writes != 0 {
		t.Errorf("Write = %v, %v with %d updates; want false, nil, 0", ok, err, *writes)
	}
}
