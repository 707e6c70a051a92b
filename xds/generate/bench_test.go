package generate

import (
	"fmt"
	"testing"

	"github.com/capstanmesh/capstan/xds/ir"
)

// benchMesh is 1000 services × 10 endpoints, one HTTP port each, every
// service with identities (so every cluster originates mTLS), and one proxy.
func benchMesh() (*ir.Mesh, *ir.Proxy) {
	proxy := newProxy()
	services := make([]*ir.Service, 1000)
	for i := range services {
		services[i] = newService(fmt.Sprintf("svc-%04d", i), fmt.Sprintf("ns-%02d", i%20),
			withClusterIP(fmt.Sprintf("10.96.%d.%d", i/250, i%250+1)), withEndpoints(10, i))
	}
	return newMesh(proxy, services...), proxy
}

func BenchmarkGenerate(b *testing.B) {
	mesh, proxy := benchMesh()
	b.ReportAllocs()
	var res *Resources
	for b.Loop() {
		var err error
		if res, err = ForProxy(mesh, proxy); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(res.Size()), "config-bytes/op")
}
