package controllers

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/xds/translate"
)

// bigRegexRoute is the audit's MeshRoute: n regexes of about 1 KiB each
// (46 make 50 KB), each a long chain of large repetitions.
func bigRegexRoute(n int) *meshv1alpha1.MeshRoute {
	big := strings.Repeat("[a-z0-9]{999}", 1000/len("[a-z0-9]{999}"))
	mr := &meshv1alpha1.MeshRoute{ObjectMeta: metav1.ObjectMeta{Name: "big", Namespace: "shop", Generation: 1}}
	mr.Spec.Hosts = []string{"api"}
	for i := range (n + 1) / 2 {
		rule := meshv1alpha1.HTTPRule{Route: []meshv1alpha1.Destination{{Host: "api"}}}
		for range min(2, n-2*i) {
			rule.Match = append(rule.Match, meshv1alpha1.HTTPMatch{Path: &meshv1alpha1.PathMatch{
				Type: meshv1alpha1.MatchRegularExpression, Value: big + string(rune('a'+i%26))}})
		}
		mr.Spec.HTTP = append(mr.Spec.HTTP, rule)
	}
	return mr
}

// BenchmarkBigRegexRoute measures the status controller's validation and a
// translation of the audit's 50 KB MeshRoute (46 regexes, refused on its
// total size), and of one with 8 such regexes (within the total, each
// refused on its size).
func BenchmarkBigRegexRoute(b *testing.B) {
	for _, n := range []int{46, 8} {
		b.Run(fmt.Sprintf("regexes=%d", n), func(b *testing.B) { benchmarkRoute(b, bigRegexRoute(n)) })
	}
}

func benchmarkRoute(b *testing.B, mr *meshv1alpha1.MeshRoute) {
	in := &translate.Inputs{
		MeshRoutes: []meshv1alpha1.MeshRoute{*mr},
		Services: []corev1.Service{{
			ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "shop"},
			Spec:       corev1.ServiceSpec{ClusterIP: "10.96.1.1", Ports: []corev1.ServicePort{{Name: "http", Port: 8080}}},
		}},
	}
	b.Run("validate", func(b *testing.B) {
		for b.Loop() {
			ValidateMeshRoute(mr)
		}
	})
	b.Run("translate", func(b *testing.B) {
		for b.Loop() {
			if _, err := translate.Translate(in); err != nil {
				b.Fatal(err)
			}
		}
	})
}
