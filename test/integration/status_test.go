package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"

	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/controllers"
	"github.com/capstanmesh/capstan/test/envtest"
)

// canaryRoute is a valid MeshRoute: 90/10 between subsets v1 and v2.
func canaryRoute(ns, name string) *meshv1alpha1.MeshRoute {
	return &meshv1alpha1.MeshRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: meshv1alpha1.MeshRouteSpec{
			Hosts: []string{"reviews"},
			HTTP: []meshv1alpha1.HTTPRule{{
				Name: "split",
				Route: []meshv1alpha1.Destination{
					{Host: "reviews", Subset: "v1", Weight: ptr.To[int32](90)},
					{Host: "reviews", Subset: "v2", Weight: ptr.To[int32](10)},
				},
			}},
		},
	}
}

// getRoute reads a MeshRoute.
func getRoute(ns, name string) (*meshv1alpha1.MeshRoute, error) {
	mr := &meshv1alpha1.MeshRoute{}
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, mr)
	return mr, err
}

// waitRouteAccepted polls until the route's Accepted condition has the
// status at the route's current generation, and returns the route.
func waitRouteAccepted(t *testing.T, ns, name string, status metav1.ConditionStatus) *meshv1alpha1.MeshRoute {
	t.Helper()
	var mr *meshv1alpha1.MeshRoute
	envtest.Eventually(t, settle, func() error {
		var err error
		if mr, err = getRoute(ns, name); err != nil {
			return err
		}
		return wantCondition(mr.Status.Conditions, meshv1alpha1.ConditionAccepted, status, mr.Generation)
	})
	return mr
}

// TestAcceptedFollowsGeneration runs the reconcilers in a manager and
// checks that Accepted tracks spec changes through observedGeneration, that
// a semantic error names the field, and that LastTransitionTime only moves
// when the status does.
func TestAcceptedFollowsGeneration(t *testing.T) {
	t.Parallel()
	ns := env.NewNamespace(t)
	env.StartManager(t, controllers.SetupWithManager, ns)
	ctx := context.Background()

	if err := env.Client.Create(ctx, canaryRoute(ns, "reviews")); err != nil {
		t.Fatal(err)
	}
	first := waitRouteAccepted(t, ns, "reviews", metav1.ConditionTrue)
	if first.Generation != 1 {
		t.Fatalf("generation %d after create, want 1", first.Generation)
	}
	acc, _ := condition(first.Status.Conditions, meshv1alpha1.ConditionAccepted)
	if acc.Reason != meshv1alpha1.ReasonAccepted {
		t.Errorf("Accepted reason %q, want %q", acc.Reason, meshv1alpha1.ReasonAccepted)
	}

	// A valid spec change: generation 2, still Accepted, same transition time.
	first.Spec.HTTP[0].Timeout = &metav1.Duration{Duration: 3e9}
	if err := env.Client.Update(ctx, first); err != nil {
		t.Fatal(err)
	}
	second := waitRouteAccepted(t, ns, "reviews", metav1.ConditionTrue)
	if second.Generation != 2 {
		t.Fatalf("generation %d after the update, want 2", second.Generation)
	}
	acc2, _ := condition(second.Status.Conditions, meshv1alpha1.ConditionAccepted)
	if !acc2.LastTransitionTime.Equal(&acc.LastTransitionTime) {
		t.Errorf("LastTransitionTime moved from %s to %s without a status change", acc.LastTransitionTime, acc2.LastTransitionTime)
	}

	// A prefix rewrite without a Prefix path match: valid to CEL, refused by the reconciler.
	second.Spec.HTTP[0].Rewrite = &meshv1alpha1.Rewrite{Prefix: "/v2/"}
	if err := env.Client.Update(ctx, second); err != nil {
		t.Fatal(err)
	}
	third := waitRouteAccepted(t, ns, "reviews", metav1.ConditionFalse)
	acc3, _ := condition(third.Status.Conditions, meshv1alpha1.ConditionAccepted)
	wantMsg := "spec.http[0].rewrite.prefix: needs a Prefix path match, and the rule has no match"
	if third.Generation != 3 || acc3.Reason != meshv1alpha1.ReasonInvalid || acc3.Message != wantMsg {
		t.Errorf("got generation %d, Accepted %s/%q, want generation 3, Invalid/%q", third.Generation, acc3.Reason, acc3.Message, wantMsg)
	}

	// Fixing it brings Accepted back.
	third.Spec.HTTP[0].Match = []meshv1alpha1.HTTPMatch{{Path: &meshv1alpha1.PathMatch{Type: meshv1alpha1.MatchPrefix, Value: "/v1/"}}}
	if err := env.Client.Update(ctx, third); err != nil {
		t.Fatal(err)
	}
	if fourth := waitRouteAccepted(t, ns, "reviews", metav1.ConditionTrue); fourth.Generation != 4 {
		t.Errorf("generation %d after the fix, want 4", fourth.Generation)
	}
}

// TestEveryKindGetsAccepted checks the Accepted condition of each kind, and
// an Event for a refused object.
func TestEveryKindGetsAccepted(t *testing.T) {
	t.Parallel()
	ns := env.NewNamespace(t)
	env.StartManager(t, controllers.SetupWithManager, ns)
	ctx := context.Background()
	objs := []struct {
		obj    client.Object
		status metav1.ConditionStatus
		msg    string
	}{
		{fromYAML(t, "DestinationPolicy", ns, "good", "host: reviews\nsubsets: [{name: v1, labels: {version: v1}}]"),
			metav1.ConditionTrue, ""},
		{fromYAML(t, "DestinationPolicy", ns, "bad-labels", "host: reviews\nsubsets: [{name: v1, labels: {'version!': v1}}]"),
			metav1.ConditionFalse, "spec.subsets[0].labels[version!]: invalid label key"},
		{fromYAML(t, "DestinationPolicy", ns, "ejects-all", "host: reviews\ntrafficPolicy: {outlierDetection: {maxEjectionPercent: 100, minHealthPercent: 0}}"),
			metav1.ConditionFalse, "spec.trafficPolicy.outlierDetection.maxEjectionPercent: with minHealthPercent 0"},
		{fromYAML(t, "PeerAuthentication", ns, "good", "mtls: {mode: STRICT}"),
			metav1.ConditionTrue, ""},
		{fromYAML(t, "PeerAuthentication", ns, "bad-selector", "selector: {matchLabels: {app: 'not a label value'}}"),
			metav1.ConditionFalse, "spec.selector.matchLabels[app]: invalid label value"},
		{fromYAML(t, "MeshRoute", ns, "pseudo-header", "hosts: [reviews]\nhttp: [{route: [{host: reviews}], headers: {request: {set: {':path': /x}}}}]"),
			metav1.ConditionFalse, "spec.http[0].headers.request.set[:path]: must be a lower-case HTTP header name"},
	}
	for _, o := range objs {
		if err := env.Client.Create(ctx, o.obj); err != nil {
			t.Fatalf("creating %s: %v", o.obj.GetName(), err)
		}
	}
	for _, o := range objs {
		envtest.Eventually(t, settle, func() error {
			u := o.obj.DeepCopyObject().(client.Object)
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(u), u); err != nil {
				return err
			}
			conds, err := unstructuredConditions(u)
			if err != nil {
				return err
			}
			if err := wantCondition(conds, meshv1alpha1.ConditionAccepted, o.status, 1); err != nil {
				return fmt.Errorf("%s %s: %w", u.GetObjectKind().GroupVersionKind().Kind, u.GetName(), err)
			}
			if c, _ := condition(conds, meshv1alpha1.ConditionAccepted); !strings.Contains(c.Message, o.msg) {
				return fmt.Errorf("%s: Accepted message %q does not contain %q", u.GetName(), c.Message, o.msg)
			}
			return nil
		})
	}
	// A refused object also gets a Warning Event naming the field.
	envtest.Eventually(t, settle, func() error {
		events := &eventsv1.EventList{}
		if err := env.Client.List(ctx, events, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Regarding.Name == "bad-labels" && e.Type == "Warning" && e.Reason == meshv1alpha1.ReasonInvalid &&
				strings.Contains(e.Note, "spec.subsets[0].labels[version!]") {
				return nil
			}
		}
		return fmt.Errorf("no Warning event for bad-labels among %d events", len(events.Items))
	})
}

// TestUnchangedStatusIsNotRewritten calls a reconciler again and again on a
// settled object and checks that nothing is written.
func TestUnchangedStatusIsNotRewritten(t *testing.T) {
	t.Parallel()
	ns := env.NewNamespace(t)
	ctx := context.Background()
	mr := canaryRoute(ns, "reviews")
	if err := env.Client.Create(ctx, mr); err != nil {
		t.Fatal(err)
	}
	r := controllers.NewMeshRouteReconciler(env.Client, nil)
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(mr)}
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	settled := waitRouteAccepted(t, ns, "reviews", metav1.ConditionTrue)
	for range 5 {
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	after, err := getRoute(ns, "reviews")
	if err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != settled.ResourceVersion {
		t.Errorf("resourceVersion moved from %s to %s: an unchanged status was written", settled.ResourceVersion, after.ResourceVersion)
	}

	// A manager's informers deliver the object again (initial list, resyncs);
	// its status must still not be rewritten.
	env.StartManager(t, controllers.SetupWithManager, ns)
	other := canaryRoute(ns, "other")
	if err := env.Client.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	waitRouteAccepted(t, ns, "other", metav1.ConditionTrue)
	if after, err = getRoute(ns, "reviews"); err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != settled.ResourceVersion {
		t.Errorf("resourceVersion moved from %s to %s under the manager", settled.ResourceVersion, after.ResourceVersion)
	}
}

// TestMeshConditions checks the Mesh's Accepted and Ready conditions.
func TestMeshConditions(t *testing.T) {
	env.StartManager(t, controllers.SetupWithManager)
	m := &meshv1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: meshv1alpha1.MeshName}}
	createMesh(t, m)
	envtest.Eventually(t, settle, func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(m), m); err != nil {
			return err
		}
		if err := wantCondition(m.Status.Conditions, meshv1alpha1.ConditionAccepted, metav1.ConditionTrue, 1); err != nil {
			return err
		}
		return wantCondition(m.Status.Conditions, meshv1alpha1.ConditionReady, metav1.ConditionTrue, 1)
	})
}
