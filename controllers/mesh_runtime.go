package controllers

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/controllers/meshstatus"
)

// DefaultMeshRuntimeInterval is how often MeshRuntimeReporter looks at the
// run-time state it reports.
const DefaultMeshRuntimeInterval = 10 * time.Second

// MeshRuntime is the run-time state MeshRuntimeReporter puts in the Mesh's
// status; nil functions are left out.
type MeshRuntime struct {
	// Connected counts the proxies with an open xDS stream by node ID kind
	// ("sidecar", "grpc").
	Connected func() map[string]int
	// EarliestExpiry is when the first workload certificate expires; ok is
	// false when none is held.
	EarliestExpiry func() (time.Time, bool)
}

// MeshRuntimeReporter writes the Mesh status fields that change at run
// time (connected proxies by kind, the earliest workload certificate
// expiry) through the Mesh's one status writer: it looks every Interval
// and the writer writes only when a field changed, so proxies connecting
// or certificates renewing cause at most one write per Interval.
type MeshRuntimeReporter struct {
	Status   *meshstatus.Writer
	Runtime  MeshRuntime
	Interval time.Duration
}

// Start reports until ctx is done (a controller-runtime Runnable).
func (r *MeshRuntimeReporter) Start(ctx context.Context) error {
	interval := r.Interval
	if interval <= 0 {
		interval = DefaultMeshRuntimeInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if _, err := r.Status.Write(ctx, r.part()); err != nil && ctx.Err() == nil {
			log.FromContext(ctx).Error(err, "writing the Mesh's run-time status failed; retrying at the next interval")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// part is the reporter's share of the Mesh status, computed now.
func (r *MeshRuntimeReporter) part() meshstatus.Part {
	var connected *meshv1alpha1.ConnectedProxies
	if r.Runtime.Connected != nil {
		byKind := r.Runtime.Connected()
		connected = &meshv1alpha1.ConnectedProxies{Sidecars: int32(byKind["sidecar"]), GRPC: int32(byKind["grpc"])}
	}
	var expiry *metav1.Time
	if r.Runtime.EarliestExpiry != nil {
		if t, ok := r.Runtime.EarliestExpiry(); ok {
			expiry = &metav1.Time{Time: t.Truncate(time.Second)}
		}
	}
	return meshstatus.Part{Source: "runtime", Fields: func(st *meshv1alpha1.MeshStatus) bool {
		changed := !equalConnected(st.ConnectedProxies, connected) || !equalTime(st.EarliestCertificateExpiry, expiry)
		st.ConnectedProxies, st.EarliestCertificateExpiry = connected, expiry
		return changed
	}}
}

func equalConnected(a, b *meshv1alpha1.ConnectedProxies) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

func equalTime(a, b *metav1.Time) bool {
	return (a == nil) == (b == nil) && (a == nil || a.Equal(b))
}
