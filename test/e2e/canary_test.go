package e2e

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// canaryRoute sends x-canary: yes to v2 and splits the rest v1/v2 by weight.
func canaryRoute(v1, v2 int32) *meshv1alpha1.MeshRoute {
	return &meshv1alpha1.MeshRoute{
		ObjectMeta: metav1.ObjectMeta{Name: service},
		Spec: meshv1alpha1.MeshRouteSpec{Hosts: []string{service}, HTTP: []meshv1alpha1.HTTPRule{
			{
				Name:  "canary-header",
				Match: []meshv1alpha1.HTTPMatch{{Headers: []meshv1alpha1.HeaderMatch{{Name: "x-canary", Type: meshv1alpha1.MatchExact, Value: "yes"}}}},
				Route: []meshv1alpha1.Destination{{Host: service, Subset: "v2"}},
			},
			{
				Name: "split",
				Route: []meshv1alpha1.Destination{
					{Host: service, Subset: "v1", Weight: ptr.To(v1)},
					{Host: service, Subset: "v2", Weight: ptr.To(v2)},
				},
			},
		}},
	}
}

// startCanary is the echo service with one v1 and one v2 backend, both
// subsets, and the canary route at v1/v2, programmed.
func startCanary(t *testing.T, v1, v2 int32) *mesh {
	t.Helper()
	m := startMesh(t)
	m.addBackend(t, "echo-v1", "v1")
	m.addBackend(t, "echo-v2", "v2")
	m.policy(t, nil, "v1", "v2")
	mr := canaryRoute(v1, v2)
	m.create(t, mr)
	routeProgrammed(t, mr)
	return m
}

// chiSquare is Pearson's statistic of the observed v1/v2 counts against the weights.
func chiSquare(got map[string]int, n int, wantV1 float64) float64 {
	exp1, exp2 := float64(n)*wantV1, float64(n)*(1-wantV1)
	d1, d2 := float64(got["v1"])-exp1, float64(got["v2"])-exp2
	return d1*d1/exp1 + d2*d2/exp2
}

// chiSquareP001 is the chi-square critical value at p = 0.001 with one degree of freedom.
const chiSquareP001 = 10.828

func TestCanarySplit(t *testing.T) {
	m := startCanary(t, 90, 10)
	c := m.dial(t)

	const n = 2000
	got := tally(c, n)
	if got["v1"]+got["v2"] != n {
		t.Fatalf("answers %v: want all %d calls answered by v1 or v2", got, n)
	}
	if x := chiSquare(got, n, 0.9); x > chiSquareP001 {
		t.Errorf("split %v over %d calls: chi-square %.2f > %.3f (p < 0.001) against 90/10", got, n, x, chiSquareP001)
	}
	t.Logf("90/10 over %d calls: %v", n, got)

	if got := tally(c, 200, "x-canary", "yes"); got["v2"] != 200 {
		t.Errorf("with x-canary: yes: %v, want all 200 on v2", got)
	}
}

func TestShiftWeights(t *testing.T) {
	m := startCanary(t, 90, 10)
	c := m.dial(t)
	if got := tally(c, 200); got["v1"] < 150 {
		t.Fatalf("before the shift: %v, want about 90%% v1", got)
	}

	m.updateRoute(t, service, func(mr *meshv1alpha1.MeshRoute) {
		mr.Spec.HTTP[1].Route[0].Weight, mr.Spec.HTTP[1].Route[1].Weight = ptr.To[int32](10), ptr.To[int32](90)
	})

	// The update reaches the client through the pipeline; poll until the traffic moved.
	var last map[string]int
	err := pollUntil(wait, func() error {
		last = tally(c, 200)
		if last["v2"] < 150 {
			return errorf("traffic %v, want about 90%% v2", last)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	got := tally(c, n)
	if x := chiSquare(got, n, 0.1); x > chiSquareP001 {
		t.Errorf("after the shift %v over %d calls: chi-square %.2f against 10/90", got, n, x)
	}
}
