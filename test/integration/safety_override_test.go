package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"

	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/controllers"
	"github.com/capstanmesh/capstan/test/envtest"
)

// A DestinationPolicy admitted only through capstan.dev/allow-aggressive-
// ejection carries SafetyOverride=True naming the fields (and a Warning
// Event) for as long as its outlier detection can eject the whole pool; the
// condition goes once the policy keeps the rule.
func TestSafetyOverrideConditionLastsWhileTheRuleIsWeakened(t *testing.T) {
	t.Parallel()
	ns := env.NewNamespace(t)
	env.StartManager(t, controllers.SetupWithManager, ns)
	ctx := context.Background()
	dp := fromYAML(t, "DestinationPolicy", ns, "ejects-all", "host: reviews\ntrafficPolicy: {outlierDetection: {maxEjectionPercent: 100, minHealthPercent: 0}}")
	dp.SetAnnotations(map[string]string{meshv1alpha1.AnnotationAllowAggressiveEjection: "true"})
	if err := env.Client.Create(ctx, dp); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(dp)
	envtest.Eventually(t, settle, func() error {
		got := &meshv1alpha1.DestinationPolicy{}
		if err := env.Client.Get(ctx, key, got); err != nil {
			return err
		}
		if err := wantCondition(got.Status.Conditions, meshv1alpha1.ConditionAccepted, metav1.ConditionTrue, got.Generation); err != nil {
			return err
		}
		if err := wantCondition(got.Status.Conditions, meshv1alpha1.ConditionSafetyOverride, metav1.ConditionTrue, got.Generation); err != nil {
			return err
		}
		c, _ := condition(got.Status.Conditions, meshv1alpha1.ConditionSafetyOverride)
		if c.Reason != meshv1alpha1.ReasonAggressiveEjectionAllowed || !strings.Contains(c.Message, "spec.trafficPolicy.outlierDetection.maxEjectionPercent") {
			return fmt.Errorf("SafetyOverride %s %q, want reason %s naming maxEjectionPercent", c.Reason, c.Message, meshv1alpha1.ReasonAggressiveEjectionAllowed)
		}
		return nil
	})
	envtest.Eventually(t, settle, func() error {
		events := &eventsv1.EventList{}
		if err := env.Client.List(ctx, events, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Regarding.Name == "ejects-all" && e.Type == "Warning" && e.Reason == meshv1alpha1.ReasonAggressiveEjectionAllowed {
				return nil
			}
		}
		return fmt.Errorf("no %s Warning Event among %d events", meshv1alpha1.ReasonAggressiveEjectionAllowed, len(events.Items))
	})

	// Keep a panic threshold: the pool can no longer be ejected whole.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		got := &meshv1alpha1.DestinationPolicy{}
		if err := env.Client.Get(ctx, key, got); err != nil {
			return err
		}
		got.Spec.TrafficPolicy.OutlierDetection.MinHealthPercent = ptr.To[int32](50)
		return env.Client.Update(ctx, got)
	})
	if err != nil {
		t.Fatal(err)
	}
	envtest.Eventually(t, settle, func() error {
		got := &meshv1alpha1.DestinationPolicy{}
		if err := env.Client.Get(ctx, key, got); err != nil {
			return err
		}
		if err := wantCondition(got.Status.Conditions, meshv1alpha1.ConditionAccepted, metav1.ConditionTrue, got.Generation); err != nil {
			return err
		}
		if c, err := condition(got.Status.Conditions, meshv1alpha1.ConditionSafetyOverride); err == nil {
			return fmt.Errorf("SafetyOverride still there after the policy kept the rule: %+v", c)
		}
		return nil
	})
}
