package controllers

import (
	"context"
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/log"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// TestReconcileLogsOneLinePerOutcome: a status reconcile writes one
// structured line per outcome, with the standard keys: the status written
// (info level), then unchanged (V(1)), then the object gone.
func TestReconcileLogsOneLinePerOutcome(t *testing.T) {
	scheme, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	mr := &meshv1alpha1.MeshRoute{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", Generation: 3}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(mr).WithStatusSubresource(mr).Build()
	var lines []string
	logger := funcr.NewJSON(func(obj string) { lines = append(lines, obj) }, funcr.Options{Verbosity: 1})
	ctx := log.IntoContext(context.Background(), logger.WithValues("namespace", "shop", "name", "web"))
	kind := statusKind[*meshv1alpha1.MeshRoute]{
		newObject:  func() *meshv1alpha1.MeshRoute { return &meshv1alpha1.MeshRoute{} },
		conditions: func(m *meshv1alpha1.MeshRoute) *[]metav1.Condition { return &m.Status.Conditions },
		desired: func(*meshv1alpha1.MeshRoute) []metav1.Condition {
			return []metav1.Condition{{Type: meshv1alpha1.ConditionAccepted, Status: metav1.ConditionTrue, Reason: "Accepted"}}
		},
	}
	req := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "shop", Name: "web"}}
	for range 2 {
		if _, err := reconcileStatus(ctx, c, nil, req, kind); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Delete(ctx, mr); err != nil {
		t.Fatal(err)
	}
	if _, err := reconcileStatus(ctx, c, nil, req, kind); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`"level":0,"msg":"reconciled","namespace":"shop","name":"web","outcome":"status updated","generation":3,"version":`,
		`"level":1,"msg":"reconciled","namespace":"shop","name":"web","outcome":"unchanged","generation":3,"version":`,
		`"level":1,"msg":"reconciled","namespace":"shop","name":"web","outcome":"gone"}`,
	}
	if len(lines) != len(want) {
		t.Fatalf("%d log lines, want %d:\n%s", len(lines), len(want), strings.Join(lines, "\n"))
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d: %s\nwant it to contain %s", i, lines[i], w)
		}
	}
	if !strings.Contains(lines[0], `"accepted":"True","reason":"Accepted"`) {
		t.Errorf("the line of the write lacks the Accepted condition: %s", lines[0])
	}
}
