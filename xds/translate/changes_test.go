package translate

import (
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/xds/ir"
)

const reviewsFQDN = "reviews.bookinfo.svc.cluster.local"

// TranslateSince says what changed since an earlier mesh: endpoints of a
// service, routes of a service, services added and removed, mesh-wide
// settings.
func TestTranslateSinceChanges(t *testing.T) {
	base := readInputs(t, filepath.Join("testdata", "canary_split.in.yaml"))
	prev, err := Translate(base)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(in *Inputs)
		want   ir.Changes
	}{
		{"nothing", func(*Inputs) {}, ir.Changes{}},
		{"endpoint address", func(in *Inputs) {
			in.EndpointSlices[0].Endpoints[0].Addresses = []string{"10.1.0.13"}
			in.Pods[0].Status.PodIP = "10.1.0.13"
		}, ir.Changes{Endpoints: []string{reviewsFQDN}}},
		{"route weights", func(in *Inputs) {
			dests := in.MeshRoutes[0].Spec.HTTP[0].Route
			dests[0].Weight, dests[1].Weight = ptr(int32(73)), ptr(int32(27))
		}, ir.Changes{Routes: []string{reviewsFQDN}}},
		{"new service", func(in *Inputs) {
			in.Services = append(in.Services, corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "ratings", Namespace: "bookinfo"},
				Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.21", ClusterIPs: []string{"10.96.0.21"},
					Ports: []corev1.ServicePort{{Name: "http", Port: 9080}}},
			})
		}, ir.Changes{Added: []string{"ratings.bookinfo.svc.cluster.local"}}},
		{"service removed", func(in *Inputs) {
			in.Services, in.EndpointSlices, in.MeshRoutes, in.DestinationPolicies = nil, nil, nil, nil
		}, ir.Changes{Removed: []string{reviewsFQDN}}},
		{"subsets", func(in *Inputs) {
			in.DestinationPolicies[0].Spec.Subsets[0].Labels = map[string]string{"version": "v3"}
		}, ir.Changes{Changed: []string{reviewsFQDN}}},
		{"mesh-wide setting", func(in *Inputs) {
			in.Mesh = &meshv1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: meshv1alpha1.MeshSpec{TrustDomain: "example.org"}}
		}, ir.Changes{Full: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := base.DeepCopy()
			tc.change(in)
			res, err := TranslateSince(prev.Mesh, in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, res.Changes); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
		})
	}
}

// Translate alone (no earlier mesh) says everything changed.
func TestTranslateChangesFull(t *testing.T) {
	res, err := TranslateSince(nil, readInputs(t, filepath.Join("testdata", "canary_split.in.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changes.Full {
		t.Errorf("changes without an earlier mesh: %+v, want Full", res.Changes)
	}
}

func ptr[T any](v T) *T { return &v }
