package controllers

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/xds/ir"
	"github.com/capstanmesh/capstan/xds/translate"
)

// StatusStore keeps the pipeline's latest verdict on each mesh object and
// wakes that object's status reconciler when the verdict changes, so that
// one writer per kind writes status, only when it changed.
type StatusStore struct {
	mu      sync.RWMutex
	byRef   map[ir.ObjectRef]translate.ObjectStatus
	proxies int32
	// events holds one channel per kind, each watched by that kind's status reconciler.
	events map[string]chan event.GenericEvent
}

// NewStatusStore returns an empty store.
func NewStatusStore() *StatusStore {
	events := map[string]chan event.GenericEvent{}
	for _, kind := range []string{translate.KindMeshRoute, translate.KindDestinationPolicy, translate.KindPeerAuthentication} {
		events[kind] = make(chan event.GenericEvent, 256)
	}
	return &StatusStore{byRef: map[ir.ObjectRef]translate.ObjectStatus{}, events: events}
}

// WriteStatuses records the statuses of one push (with their per-object
// proxy counts; proxies, the number of proxies in sync, is kept for
// reference), and queues a reconcile for every object whose verdict changed.
func (s *StatusStore) WriteStatuses(ctx context.Context, statuses []translate.ObjectStatus, proxies int32) error {
	changed := s.replace(statuses, proxies)
	for _, ref := range changed {
		ch, ok := s.events[ref.Kind]
		if !ok {
			continue
		}
		select {
		case ch <- event.GenericEvent{Object: objectFor(ref)}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// replace swaps in the new statuses and returns the refs whose verdict changed.
func (s *StatusStore) replace(statuses []translate.ObjectStatus, proxies int32) []ir.ObjectRef {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := make(map[ir.ObjectRef]translate.ObjectStatus, len(statuses))
	var changed []ir.ObjectRef
	for _, st := range statuses {
		next[st.Ref] = st
		old, ok := s.byRef[st.Ref]
		if !ok || !equality.Semantic.DeepEqual(old, st) {
			changed = append(changed, st.Ref)
		}
	}
	s.byRef, s.proxies = next, proxies
	return changed
}

// Lookup returns the pipeline's conditions for an object at the given
// generation, and its proxy counts (nil when the pipeline has none).
func (s *StatusStore) Lookup(ref ir.ObjectRef, generation int64) ([]metav1.Condition, *meshv1alpha1.ProxyCounts, bool) {
	if s == nil {
		return nil, nil, false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	st, ok := s.byRef[ref]
	if !ok || st.Generation != generation {
		return nil, nil, false
	}
	return st.Conditions, st.Proxies, true
}

// Events is the channel of objects of one kind whose verdict changed, for a source.Channel watch.
func (s *StatusStore) Events(kind string) <-chan event.GenericEvent { return s.events[kind] }

// objectFor returns an empty object of the ref's kind, named like ref, for an event.
func objectFor(ref ir.ObjectRef) client.Object {
	meta := metav1.ObjectMeta{Namespace: ref.Namespace, Name: ref.Name}
	switch ref.Kind {
	case translate.KindMeshRoute:
		return &meshv1alpha1.MeshRoute{ObjectMeta: meta}
	case translate.KindDestinationPolicy:
		return &meshv1alpha1.DestinationPolicy{ObjectMeta: meta}
	default:
		return &meshv1alpha1.PeerAuthentication{ObjectMeta: meta}
	}
}
