package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
)

// DefaultRecheckInterval is how often open authenticated streams are
// checked again: their pod (deleted, replaced) and their token's expiry.
const DefaultRecheckInterval = 5 * time.Second

// recvOrClosed receives into m, or returns the stream's refusal once its
// context is cancelled by closeWith: go-control-plane's receive loop only
// ends when a receive fails. After a close the receive left running ends
// when the RPC does; nobody reads m then.
func (a *authStream) recvOrClosed(m any) error {
	done := make(chan error, 1)
	go func() { done <- a.ServerStream.RecvMsg(m) }()
	select {
	case err := <-done:
		return err
	case <-a.ctx.Done():
		if ref, _ := a.refused(); ref != nil {
			return ref.status()
		}
		return a.ctx.Err()
	}
}

// closeWith ends the stream with ref, unless it was refused already.
func (a *authStream) closeWith(ref *refusal) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.refuse != nil {
		return false
	}
	a.refuse, a.refusedNode = ref, a.node
	a.cancel()
	return true
}

// recheck is why the stream must close now (nil: it may stay open): its
// token expired, or its pod is gone, replaced or runs as another
// ServiceAccount.
func (a *authStream) recheck(now time.Time) *refusal {
	if !a.expiry.IsZero() && !now.Before(a.expiry) {
		return &refusal{reason: ReasonTokenExpired, code: codes.Unauthenticated,
			detail: fmt.Sprintf("the stream's token expired at %s", a.expiry.UTC().Format(time.RFC3339))}
	}
	a.mu.Lock()
	node := a.node
	a.mu.Unlock()
	if node == "" {
		return nil
	}
	return a.check(a.caller, node)
}

// streamSet holds the open authenticated streams.
type streamSet struct {
	mu      sync.Mutex
	streams map[*authStream]struct{}
}

func (s *streamSet) add(a *authStream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.streams == nil {
		s.streams = map[*authStream]struct{}{}
	}
	s.streams[a] = struct{}{}
}

func (s *streamSet) remove(a *authStream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.streams, a)
}

// matching returns the streams for which keep is true.
func (s *streamSet) matching(keep func(*authStream) bool) []*authStream {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*authStream
	for a := range s.streams {
		if keep(a) {
			out = append(out, a)
		}
	}
	return out
}

// recheckStreams closes the streams among as that must close.
func (s *Server) recheckStreams(as []*authStream) {
	now := s.clock.Now()
	for _, a := range as {
		if ref := a.recheck(now); ref != nil && a.closeWith(ref) {
			s.log.V(1).Info("closing xDS stream", "reason", ref.reason, "namespace", a.caller.Namespace, "pod", a.caller.PodName)
		}
	}
}

// RecheckPod checks the open streams of a pod again at once: a pod
// watcher calls it when the pod changes or is deleted, so that its
// streams close without waiting for the periodic recheck.
func (s *Server) RecheckPod(namespace, name string) {
	s.recheckStreams(s.streams.matching(func(a *authStream) bool {
		return a.caller.Namespace == namespace && a.caller.PodName == name
	}))
}

// recheckPeriodically checks every open stream each RecheckInterval until
// ctx is done.
func (s *Server) recheckPeriodically(ctx context.Context) {
	t := s.clock.NewTicker(s.opts.RecheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			s.recheckStreams(s.streams.matching(func(*authStream) bool { return true }))
		}
	}
}
