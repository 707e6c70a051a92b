package xdsauth

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/capstanmesh/capstan/xds/auth/kubeauth"
	"github.com/capstanmesh/capstan/xds/server"
)

// floodDuration is how long BenchmarkJunkTokenFlood floods.
const floodDuration = 5 * time.Second

// BenchmarkJunkTokenFlood measures what a flood of junk tokens from one
// client costs with the server's default settings: the TokenReviews it
// causes in floodDuration and the heap it leaves. Run with -benchtime=1x:
//
//	go test ./test/xdsauth -run '^$' -bench JunkTokenFlood -benchtime=1x
func BenchmarkJunkTokenFlood(b *testing.B) {
	for b.Loop() {
		auth := &countingAuth{inner: &kubeauth.TokenReviewAuthenticator{Client: env.Client, Audience: kubeauth.XDSTokenAudience}}
		s := startTLSServerWith(b, func(o *server.Options) { o.Authenticator = auth })
		heapBefore := heapInUse()
		ctx, cancel := context.WithTimeout(context.Background(), floodDuration)
		stats := flood(ctx, b, s, 8)
		<-ctx.Done()
		cancel()
		b.ReportMetric(float64(auth.calls.Load()), "reviews/5s")
		b.ReportMetric(float64(stats.streams.Load()+stats.exchanges.Load()), "attempts/5s")
		b.ReportMetric(float64(auth.maxConcurrent()), "max-reviews-in-flight")
		b.ReportMetric(float64(heapInUse()-heapBefore)/(1<<20), "heap-MiB")
	}
}

func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}
