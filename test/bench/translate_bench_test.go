package bench

import (
	"testing"

	"github.com/capstanmesh/capstan/xds/translate"
)

// BenchmarkTranslateEndpointChange is the translation stage of one
// endpoint change in the scale harness's mesh (1000 services × 10
// endpoints, 1000 proxies, scoped): the whole translation and the diff
// with the previous model, which the runner does before generating.
func BenchmarkTranslateEndpointChange(b *testing.B) {
	for _, scoped := range []bool{false, true} {
		name := "mesh-wide"
		if scoped {
			name = "scoped"
		}
		b.Run(name, func(b *testing.B) {
			m := Mesh{Services: 1000, Endpoints: 10, Namespaces: 10, Proxies: 1000, Routes: 10, Scoped: scoped, Dependencies: 5}
			in := m.Inputs()
			prev, err := translate.Translate(in)
			if err != nil {
				b.Fatal(err)
			}
			next := m.EndpointChange(in).Inputs
			b.ResetTimer()
			for b.Loop() {
				res, err := translate.TranslateSince(prev.Mesh, next)
				if err != nil {
					b.Fatal(err)
				}
				if res.Changes.Full || len(res.Changes.Endpoints) != 1 {
					b.Fatalf("changes: %+v, want one service's endpoints", res.Changes)
				}
			}
		})
	}
}
