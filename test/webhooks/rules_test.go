package webhooks

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/capstanmesh/capstan/api/validation/validationtest"
)

// TestEveryRuleThroughTheAPIServer creates each shared case (validationtest)
// of the namespaced kinds through the real API server and webhooks: the cases
// the rules refuse are refused as Invalid naming each field (by the webhook,
// or by the schema and CEL for the rules api/validation keeps as a second
// line), the others are created. The Mesh cases are left to the handler's
// test: the Mesh is a cluster-wide singleton other tests use.
func TestEveryRuleThroughTheAPIServer(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, nil)
	c, _ := warningClient(t)
	for _, tc := range validationtest.Cases() {
		if tc.Kind() == "Mesh" {
			continue
		}
		t.Run(tc.Kind()+"/"+tc.Name, func(t *testing.T) {
			obj := tc.Object.DeepCopyObject().(client.Object)
			obj.SetNamespace(ns)
			err := c.Create(context.Background(), obj)
			if !tc.Refused() {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("admitted")
			}
			if !apierrors.IsInvalid(err) {
				t.Errorf("error %v is not Invalid", err)
			}
			if !tc.SchemaRefuses && !strings.Contains(err.Error(), "denied the request") {
				t.Errorf("error %q does not come from the webhook", err)
			}
			for _, f := range tc.Fields {
				if !namesField(err.Error(), f, tc.SchemaRefuses) {
					t.Errorf("error %q does not name %s", err, f)
				}
			}
		})
	}
}

// namesField says whether msg names field f. The schema and CEL may name
// the object holding f instead (a list-map's duplicate entry, a rule that
// failed to evaluate).
func namesField(msg, f string, bySchema bool) bool {
	if strings.Contains(msg, f+": ") {
		return true
	}
	i := strings.LastIndex(f, ".")
	return bySchema && i > 0 && strings.Contains(msg, f[:i]+": ")
}
