// Package auth defines who an xDS stream's caller is and the interfaces that
// verify it: the contract between the xDS server, which enforces it, and the
// Kubernetes-backed implementations in kubeauth. It imports only the
// standard library, so both sides can depend on it.
package auth

import (
	"context"
	"errors"
)

// Caller is the workload an xDS stream's token was issued to: the
// ServiceAccount, and the pod the token is bound to.
type Caller struct {
	Namespace      string
	ServiceAccount string
	PodName        string
	PodUID         string
}

// Authenticator verifies a proxy's bearer token (a projected ServiceAccount
// token, audience capstan). It returns an error when the token is not
// valid; errors wrapping ErrAuthUnavailable mean the token could not be
// checked (the stream then ends with Unavailable, not PermissionDenied).
// Error messages must not contain the token.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Caller, error)
}

// PodLookup finds a pod the control plane knows: its UID and ServiceAccount.
type PodLookup interface {
	Pod(namespace, name string) (uid, serviceAccount string, ok bool)
}

// ErrAuthUnavailable marks an Authenticator error that says nothing about the
// token: the verifier could not be reached.
var ErrAuthUnavailable = errors.New("token verification unavailable")

// DebugAccess is what a caller of the operator's debug endpoint asks to
// see: verb get on the virtual resource proxies/<Subresource> of group
// mesh.capstan.dev, in Namespace (every namespace when empty), for the pod
// Name (every pod when empty).
type DebugAccess struct {
	Subresource string
	Namespace   string
	Name        string
}

// DebugAuthorizer checks a debug endpoint caller: it authenticates the
// bearer token and authorizes the user for the access. It returns the user
// name. Errors wrap ErrUnauthenticated (the token is not valid),
// ErrForbidden (the user may not) or ErrAuthUnavailable (it could not be
// checked), and never contain the token.
type DebugAuthorizer interface {
	AuthorizeDebug(ctx context.Context, token string, access DebugAccess) (user string, err error)
}

// Errors of DebugAuthorizer.
var (
	ErrUnauthenticated = errors.New("unauthenticated")
	ErrForbidden       = errors.New("forbidden")
)
