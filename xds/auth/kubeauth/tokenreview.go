package kubeauth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/capstanmesh/capstan/xds/auth"
)

// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create

// XDSTokenAudience is the audience of the projected ServiceAccount tokens
// that proxies present to the xDS server.
const XDSTokenAudience = "capstan"

// Extras that the API server puts into the review of a pod-bound token.
const (
	extraPodName = "authentication.kubernetes.io/pod-name"
	extraPodUID  = "authentication.kubernetes.io/pod-uid"
)

const serviceAccountUserPrefix = "system:serviceaccount:"

// TokenReviewAuthenticator is the xDS server's Authenticator: it asks the API
// server (authentication.k8s.io/v1 TokenReview) whether a token is a valid
// ServiceAccount token for Audience, and returns its ServiceAccount and the
// pod it is bound to. It does not cache: the xDS server does.
type TokenReviewAuthenticator struct {
	// Client creates TokenReviews (needs tokenreviews create).
	Client client.Client
	// Audience the token must be issued for; XDSTokenAudience when empty.
	Audience string
}

var _ auth.Authenticator = (*TokenReviewAuthenticator)(nil)

// Authenticate implements auth.Authenticator. Errors never contain the
// token. When the review itself fails (the API server is unreachable, or
// refuses the review), the error wraps auth.ErrAuthUnavailable.
func (a *TokenReviewAuthenticator) Authenticate(ctx context.Context, token string) (auth.Caller, error) {
	audience := a.Audience
	if audience == "" {
		audience = XDSTokenAudience
	}
	if token == "" {
		return auth.Caller{}, errors.New("empty token")
	}
	review := &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{
		Token:     token,
		Audiences: []string{audience},
	}}
	if err := a.Client.Create(ctx, review); err != nil {
		return auth.Caller{}, fmt.Errorf("%w: TokenReview: %s", auth.ErrAuthUnavailable, redactToken(reviewErrorText(err), token))
	}
	st := review.Status
	if !st.Authenticated {
		msg := "token not authenticated"
		if st.Error != "" {
			msg += ": " + redactToken(st.Error, token)
		}
		return auth.Caller{}, errors.New(msg)
	}
	// An API server that does not support audiences may answer without
	// them; the token must be valid for ours.
	if !slices.Contains(st.Audiences, audience) {
		return auth.Caller{}, fmt.Errorf("token not valid for audience %q (valid for %q)", audience, st.Audiences)
	}
	return callerOf(st.User)
}

// callerOf reads the ServiceAccount and bound pod of a reviewed token.
func callerOf(u authnv1.UserInfo) (auth.Caller, error) {
	rest, ok := strings.CutPrefix(u.Username, serviceAccountUserPrefix)
	if !ok {
		return auth.Caller{}, fmt.Errorf("user %q is not a ServiceAccount", u.Username)
	}
	ns, sa, ok := strings.Cut(rest, ":")
	if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(sa)) > 0 {
		return auth.Caller{}, fmt.Errorf("malformed ServiceAccount user %q", u.Username)
	}
	c := auth.Caller{Namespace: ns, ServiceAccount: sa}
	var err error
	if c.PodName, err = singleExtra(u.Extra, extraPodName); err != nil {
		return auth.Caller{}, err
	}
	if c.PodUID, err = singleExtra(u.Extra, extraPodUID); err != nil {
		return auth.Caller{}, err
	}
	return c, nil
}

// singleExtra returns the one value of an extra, or "" when it is absent
// (the token is not bound to a pod).
func singleExtra(extra map[string]authnv1.ExtraValue, key string) (string, error) {
	v := extra[key]
	switch len(v) {
	case 0:
		return "", nil
	case 1:
		return v[0], nil
	default:
		return "", fmt.Errorf("%s has %d values, want 1", key, len(v))
	}
}

// reviewErrorText describes a failed TokenReview create. A StatusError is
// reduced to its reason and message, which do not echo the request.
func reviewErrorText(err error) string {
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		s := se.Status()
		return fmt.Sprintf("%s: %s", s.Reason, s.Message)
	}
	return err.Error()
}

func redactToken(msg, token string) string {
	return strings.ReplaceAll(msg, token, "[REDACTED]")
}
