// Package debug is the operator's debug endpoint: what the xDS server knows
// about each proxy (proxy-status) and the configuration it serves a proxy
// (proxy-config), as JSON (xds/debugapi) over HTTPS. capstanctl reaches it
// through the API server's service proxy. Every request is authenticated and
// authorized (auth.DebugAuthorizer: TokenReview and SubjectAccessReview) and
// secrets are served without their private keys. See docs/security.md.
package debug

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/capstanmesh/capstan/xds/auth"
	"github.com/capstanmesh/capstan/xds/debugapi"
	"github.com/capstanmesh/capstan/xds/server"
)

// Source is what the endpoint reads: the xDS server.
type Source interface {
	ProxyStatuses() []server.ProxyStatus
	PublishedConfig(nodeID string) (server.PublishedConfig, bool)
}

// DefaultMaxInFlight bounds the requests being authorized or answered at
// once; more are refused with 429 (each costs two reviews in the API server).
const DefaultMaxInFlight = 8

// authTimeout bounds the reviews of one request.
const authTimeout = 10 * time.Second

// Options configure the Handler.
type Options struct {
	Logger     logr.Logger
	Source     Source
	Authorizer auth.DebugAuthorizer
	// MaxInFlight: DefaultMaxInFlight when zero.
	MaxInFlight int
}

// Handler serves the debug endpoint's paths.
type Handler struct {
	log      logr.Logger
	source   Source
	authz    auth.DebugAuthorizer
	inFlight chan struct{}
	mux      *http.ServeMux
}

// NewHandler returns the endpoint's handler. Without an Authorizer every
// request is refused.
func NewHandler(opts Options) *Handler {
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	log := opts.Logger
	if log.GetSink() == nil {
		log = logr.Discard()
	}
	h := &Handler{log: log, source: opts.Source, authz: opts.Authorizer,
		inFlight: make(chan struct{}, opts.MaxInFlight), mux: http.NewServeMux()}
	h.mux.HandleFunc("GET "+debugapi.PathProxies, h.proxies)
	h.mux.HandleFunc("GET "+debugapi.PathConfig, h.config)
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case h.inFlight <- struct{}{}:
		defer func() { <-h.inFlight }()
	default:
		writeError(w, http.StatusTooManyRequests, "too many debug requests in flight; retry")
		return
	}
	h.mux.ServeHTTP(w, r)
}

// authorize checks the caller for access; it answers the request and
// returns false when the caller may not.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request, access auth.DebugAccess) bool {
	if h.authz == nil {
		writeError(w, http.StatusForbidden, "the debug endpoint has no authorizer")
		return false
	}
	ctx, cancel := context.WithTimeout(r.Context(), authTimeout)
	defer cancel()
	user, err := h.authz.AuthorizeDebug(ctx, tokenOf(r), access)
	if err == nil {
		h.log.V(1).Info("debug request", "user", user, "path", r.URL.Path, "namespace", access.Namespace, "pod", access.Name)
		return true
	}
	code := http.StatusServiceUnavailable
	switch {
	case errors.Is(err, auth.ErrUnauthenticated):
		code = http.StatusUnauthorized
	case errors.Is(err, auth.ErrForbidden):
		code = http.StatusForbidden
	}
	h.log.V(1).Info("debug request refused", "user", user, "path", r.URL.Path, "status", code, "reason", err.Error())
	writeError(w, code, err.Error())
	return false
}

// tokenOf is the caller's bearer token: TokenHeader (through the API
// server's service proxy, which drops Authorization), else Authorization.
func tokenOf(r *http.Request) string {
	if t := strings.TrimSpace(r.Header.Get(debugapi.TokenHeader)); t != "" {
		return strings.TrimSpace(strings.TrimPrefix(t, "Bearer "))
	}
	if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(t)
	}
	return ""
}

func (h *Handler) proxies(w http.ResponseWriter, r *http.Request) {
	ns := r.URL.Query().Get("namespace")
	if !h.authorize(w, r, auth.DebugAccess{Subresource: debugapi.SubresourceStatus, Namespace: ns}) {
		return
	}
	writeJSON(w, http.StatusOK, proxyList(h.source.ProxyStatuses(), ns))
}

func (h *Handler) config(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ns, pod, typ := q.Get("namespace"), q.Get("pod"), q.Get("type")
	if ns == "" || pod == "" {
		writeError(w, http.StatusBadRequest, "namespace and pod are required")
		return
	}
	typeURL, ok := typeURLs[typ]
	if !ok {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown type %q: want one of %s", typ, strings.Join(debugapi.TypeNames, ", ")))
		return
	}
	if !h.authorize(w, r, auth.DebugAccess{Subresource: debugapi.SubresourceConfig, Namespace: ns, Name: pod}) {
		return
	}
	node, ok := nodeOfPod(h.source.ProxyStatuses(), ns, pod)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no proxy of pod %s/%s is known to the control plane", ns, pod))
		return
	}
	cfg, ok := h.source.PublishedConfig(node)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no configuration is served to %s", node))
		return
	}
	out, err := renderConfig(node, typ, typeURL, cfg)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, debugapi.Error{Status: code, Message: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"status":500,"message":"encoding the answer failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}
