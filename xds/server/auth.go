package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/capstanmesh/capstan/xds/auth"
)

// The caller and the interfaces that verify it are defined in xds/auth, so
// that the Kubernetes-backed implementations need not import the server.
type (
	// Caller is auth.Caller.
	Caller = auth.Caller
	// Authenticator is auth.Authenticator.
	Authenticator = auth.Authenticator
	// PodLookup is auth.PodLookup.
	PodLookup = auth.PodLookup
)

// ErrAuthUnavailable is auth.ErrAuthUnavailable.
var ErrAuthUnavailable = auth.ErrAuthUnavailable

// Reasons an xDS stream is refused: the reason label of
// capstan_xds_auth_failures_total, and the text the client is told.
const (
	ReasonMissingToken     = "missing_token"
	ReasonInvalidToken     = "invalid_token"
	ReasonUnavailable      = "verification_unavailable"
	ReasonUnboundToken     = "token_not_bound_to_pod"
	ReasonBadNodeID        = "bad_node_id"
	ReasonPodMismatch      = "pod_mismatch"
	ReasonUnknownPod       = "unknown_pod"
	ReasonPodUIDMismatch   = "pod_uid_mismatch"
	ReasonServiceAccount   = "service_account_mismatch"
	ReasonNodeChanged      = "node_id_changed"
	ReasonTokenExpired     = "token_expired"
	authMetricName         = "capstan_xds_auth_failures_total"
	authorizationHeader    = "authorization"
	bearerPrefix           = "bearer "
	redactedToken          = "[REDACTED]"
	maxAuthorizationLength = 16 << 10
)

// StreamRefusalReasons are the reasons Observer.StreamRefused is given.
var StreamRefusalReasons = []string{
	ReasonMissingToken, ReasonInvalidToken, ReasonUnavailable, ReasonUnboundToken, ReasonBadNodeID,
	ReasonPodMismatch, ReasonUnknownPod, ReasonPodUIDMismatch, ReasonServiceAccount, ReasonNodeChanged,
	ReasonUnaryCall, ReasonReviewThrottled, ReasonTokenExpired,
}

// tokenExchanges counts token exchanges answered with an access token;
// refused ones are counted in authFailures.
var tokenExchanges = prometheus.NewCounter(prometheus.CounterOpts{
	Name: "capstan_xds_token_exchanges_total",
	Help: "Token exchanges (/v1/token) answered with an access token; refusals are counted in " + authMetricName + ".",
})

func init() {
	metrics.Registry.MustRegister(tokenExchanges)
}

type callerKey struct{}

// CallerFromContext returns the authenticated caller of an xDS stream, when
// the server authenticates streams.
func CallerFromContext(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// refusal is why a stream was refused; its error is what the client sees.
type refusal struct {
	reason string
	code   codes.Code
	detail string // for the log only; never holds the token
}

func (r *refusal) status() error {
	return status.Error(r.code, "xDS stream refused: "+r.reason)
}

// streamAuth is the gRPC stream interceptor that authenticates every xDS
// stream: the bearer token, then the node ID of the first request (and of
// every later request that names one) against the token's pod.
func (s *Server) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx := ss.Context()
	token, ref := bearerToken(ctx)
	if ref != nil {
		return s.refuse(ctx, ref, "", nil)
	}
	caller, expiry, err := s.auth.authenticate(ctx, token, peerAddr(ctx))
	if err != nil {
		return s.refuse(ctx, authRefusal(err, token), "", nil)
	}
	if caller.PodName == "" || caller.PodUID == "" {
		return s.refuse(ctx, &refusal{reason: ReasonUnboundToken, code: codes.PermissionDenied,
			detail: "the token is not bound to a pod"}, "", &caller)
	}
	sctx, cancel := context.WithCancel(context.WithValue(ctx, callerKey{}, caller))
	defer cancel()
	as := &authStream{ServerStream: ss, ctx: sctx, cancel: cancel, caller: caller, expiry: expiry, check: s.checkNode}
	s.streams.add(as)
	defer s.streams.remove(as)
	err = handler(srv, as)
	if ref, node := as.refused(); ref != nil {
		return s.refuse(ctx, ref, node, &caller)
	}
	return err
}

// authRefusal is the refusal of a token the cache or the Authenticator
// did not accept: Unavailable when it could not be checked (the client
// retries), PermissionDenied when it is not valid.
func authRefusal(err error, token string) *refusal {
	ref := &refusal{reason: ReasonInvalidToken, code: codes.PermissionDenied, detail: redact(err.Error(), token)}
	switch {
	case errors.Is(err, ErrTokenExpired):
		ref.reason, ref.code = ReasonTokenExpired, codes.Unauthenticated
	case errors.Is(err, ErrReviewThrottled):
		ref.reason, ref.code = ReasonReviewThrottled, codes.Unavailable
	case errors.Is(err, ErrAuthUnavailable):
		ref.reason, ref.code = ReasonUnavailable, codes.Unavailable
	}
	return ref
}

// peerAddr is the remote IP address of a call, "" when unknown.
func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return peerHost(p.Addr.String())
	}
	return ""
}

// refuse logs and counts a refusal and returns its status.
func (s *Server) refuse(ctx context.Context, ref *refusal, node string, caller *Caller) error {
	s.observer.StreamRefused(ref.reason)
	// Rate-limited per peer: an unauthenticated client chooses how often
	// it is refused, and part of what is logged (node ID, detail).
	from := peerAddr(ctx)
	ok, suppressed := s.logLimit.allowN("refuse/" + from)
	if !ok {
		return ref.status()
	}
	kv := []any{"reason", ref.reason, "detail", truncate(ref.detail), "suppressed", suppressed}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		kv = append(kv, "peer", p.Addr.String())
	}
	if node != "" {
		kv = append(kv, "nodeID", truncate(node))
	}
	if caller != nil {
		kv = append(kv, "namespace", caller.Namespace, "serviceAccount", caller.ServiceAccount, "pod", caller.PodName)
	}
	s.log.Info("refused xDS stream", kv...)
	return ref.status()
}

// bearerToken reads the stream's "authorization: Bearer <token>" metadata.
func bearerToken(ctx context.Context) (string, *refusal) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(authorizationHeader)
	missing := func(detail string) *refusal {
		return &refusal{reason: ReasonMissingToken, code: codes.PermissionDenied, detail: detail}
	}
	switch {
	case len(vals) == 0:
		return "", missing("no authorization metadata")
	case len(vals) > 1:
		return "", missing("more than one authorization value")
	}
	v := vals[0]
	if len(v) > maxAuthorizationLength {
		return "", missing("authorization value too long")
	}
	if len(v) < len(bearerPrefix) || !strings.EqualFold(v[:len(bearerPrefix)], bearerPrefix) {
		return "", missing("authorization is not a bearer token")
	}
	token := strings.TrimSpace(v[len(bearerPrefix):])
	if token == "" {
		return "", missing("empty bearer token")
	}
	return token, nil
}

// redact removes the token from a message.
func redact(msg, token string) string {
	if token == "" {
		return msg
	}
	return strings.ReplaceAll(msg, token, redactedToken)
}

// checkNode checks that a node ID names the caller's pod, and that the pod
// the control plane knows by that name is the token's pod (same UID) and
// runs as the token's ServiceAccount.
func (s *Server) checkNode(caller Caller, nodeID string) *refusal {
	deny := func(reason, format string, args ...any) *refusal {
		return &refusal{reason: reason, code: codes.PermissionDenied, detail: fmt.Sprintf(format, args...)}
	}
	id, err := ParseNodeID(nodeID)
	if err != nil {
		return deny(ReasonBadNodeID, "%v", err)
	}
	if id.Namespace != caller.Namespace || id.Pod != caller.PodName {
		return deny(ReasonPodMismatch, "node ID names pod %s/%s, the token is bound to pod %s/%s",
			id.Namespace, id.Pod, caller.Namespace, caller.PodName)
	}
	if s.opts.Pods == nil {
		return deny(ReasonUnknownPod, "no pod lookup configured")
	}
	uid, sa, ok := s.opts.Pods.Pod(id.Namespace, id.Pod)
	if !ok {
		return deny(ReasonUnknownPod, "pod %s/%s is not known", id.Namespace, id.Pod)
	}
	if uid != caller.PodUID {
		return deny(ReasonPodUIDMismatch, "pod %s/%s has UID %s, the token is bound to UID %s", id.Namespace, id.Pod, uid, caller.PodUID)
	}
	if sa != caller.ServiceAccount {
		return deny(ReasonServiceAccount, "pod %s/%s runs as %s, the token is for %s", id.Namespace, id.Pod, sa, caller.ServiceAccount)
	}
	return nil
}

// authStream checks the node ID of the requests it receives. After a
// refusal it receives and sends nothing more, and its context is cancelled.
type authStream struct {
	grpc.ServerStream
	ctx    context.Context
	cancel context.CancelFunc
	caller Caller
	// expiry is the token's own expiry (zero: none); the stream is closed
	// when it passes.
	expiry time.Time
	check  func(Caller, string) *refusal

	mu     sync.Mutex
	node   string // the node ID accepted with the first request
	refuse *refusal
	// refusedNode is the node ID that was refused, for the log.
	refusedNode string
}

func (a *authStream) Context() context.Context { return a.ctx }

func (a *authStream) refused() (*refusal, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.refuse, a.refusedNode
}

func (a *authStream) SendMsg(m any) error {
	if ref, _ := a.refused(); ref != nil {
		return ref.status()
	}
	return a.ServerStream.SendMsg(m)
}

// RecvMsg receives the next request, or returns the refusal as soon as
// the stream is closed by closeWith (the pending receive then ends with
// the RPC).
func (a *authStream) RecvMsg(m any) error {
	if ref, _ := a.refused(); ref != nil {
		return ref.status()
	}
	if err := a.recvOrClosed(m); err != nil {
		return err
	}
	node, hasNode := requestNode(m)
	a.mu.Lock()
	defer a.mu.Unlock()
	var ref *refusal
	switch {
	case a.node == "":
		// The first request must name the node.
		ref = a.check(a.caller, node.GetId())
		if ref == nil {
			a.node = node.GetId()
		}
	case hasNode && node.GetId() != a.node:
		ref = &refusal{reason: ReasonNodeChanged, code: codes.PermissionDenied,
			detail: fmt.Sprintf("stream of node %s named another node", truncate(a.node))}
	}
	if ref != nil {
		a.refuse, a.refusedNode = ref, node.GetId()
		a.cancel()
		return ref.status()
	}
	return nil
}

// requestNode returns the node of an xDS request, and whether it has one.
func requestNode(m any) (*corev3.Node, bool) {
	var n *corev3.Node
	switch r := m.(type) {
	case *discoveryv3.DiscoveryRequest:
		n = r.GetNode()
	case *discoveryv3.DeltaDiscoveryRequest:
		n = r.GetNode()
	}
	return n, n != nil
}
