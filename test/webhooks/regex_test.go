package webhooks

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// TestRegexAboveEnvoysLimitIsRefused creates MeshRoutes through the real API
// server and webhook: a regex whose RE2 program Envoy would refuse is refused
// at admission, naming the field, the program size and the limit; one at the
// limit is admitted.
func TestRegexAboveEnvoysLimitIsRefused(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, nil)
	c, _ := warningClient(t)
	ctx := context.Background()

	withPath := func(name, regex string) *meshv1alpha1.MeshRoute {
		mr := route(ns, meshv1alpha1.Destination{Host: "reviews"})
		mr.Name = name
		mr.Spec.HTTP[0].Match = []meshv1alpha1.HTTPMatch{{Path: &meshv1alpha1.PathMatch{
			Type: meshv1alpha1.MatchRegularExpression, Value: regex}}}
		return mr
	}
	err := c.Create(ctx, withPath("too-large", "/items/[a-z0-9]{0,100}"))
	if err == nil {
		t.Fatal("a regex above Envoy's program size limit was admitted")
	}
	for _, want := range []string{
		`admission webhook "meshroute.validate.capstan.dev" denied the request`,
		`spec.http[0].match[0].path.value: Invalid value: "/items/[a-z0-9]{0,100}"`,
		"RE2 program size 311 exceeds the limit of 100",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if !apierrors.IsInvalid(err) {
		t.Errorf("error %v is not Invalid", err)
	}
	if err := c.Create(ctx, withPath("at-limit", "[a-z0-9]{0,32}")); err != nil {
		t.Errorf("a regex at the limit was refused: %v", err)
	}
}
