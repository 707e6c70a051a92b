package kubeauth

import (
	"context"
	"fmt"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/capstanmesh/capstan/xds/auth"
	"github.com/capstanmesh/capstan/xds/debugapi"
)

// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// DebugAuthorizer is the debug endpoint's auth.DebugAuthorizer: a
// TokenReview of the caller's token (the API server's own audiences, as
// for any kubectl user), then a SubjectAccessReview of the user it names for
// verb get on mesh.capstan.dev proxies/<subresource>. It does not cache.
type DebugAuthorizer struct {
	// Client creates TokenReviews and SubjectAccessReviews.
	Client client.Client
}

var _ auth.DebugAuthorizer = (*DebugAuthorizer)(nil)

// AuthorizeDebug implements auth.DebugAuthorizer.
func (a *DebugAuthorizer) AuthorizeDebug(ctx context.Context, token string, access auth.DebugAccess) (string, error) {
	if token == "" {
		return "", fmt.Errorf("%w: no bearer token in the %s header", auth.ErrUnauthenticated, debugapi.TokenHeader)
	}
	user, err := a.review(ctx, token)
	if err != nil {
		return "", err
	}
	if err := a.access(ctx, user, access); err != nil {
		return user.Username, err
	}
	return user.Username, nil
}

func (a *DebugAuthorizer) review(ctx context.Context, token string) (authnv1.UserInfo, error) {
	review := &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token}}
	if err := a.Client.Create(ctx, review); err != nil {
		return authnv1.UserInfo{}, fmt.Errorf("%w: TokenReview: %s", auth.ErrAuthUnavailable, redactToken(reviewErrorText(err), token))
	}
	if !review.Status.Authenticated {
		msg := "token not authenticated"
		if review.Status.Error != "" {
			msg += ": " + redactToken(review.Status.Error, token)
		}
		return authnv1.UserInfo{}, fmt.Errorf("%w: %s", auth.ErrUnauthenticated, msg)
	}
	return review.Status.User, nil
}

func (a *DebugAuthorizer) access(ctx context.Context, user authnv1.UserInfo, access auth.DebugAccess) error {
	sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
		User:   user.Username,
		UID:    user.UID,
		Groups: user.Groups,
		Extra:  extraOf(user.Extra),
		ResourceAttributes: &authzv1.ResourceAttributes{
			Verb: "get", Group: debugapi.Group, Resource: debugapi.ResourceProxies,
			Subresource: access.Subresource, Namespace: access.Namespace, Name: access.Name,
		},
	}}
	if err := a.Client.Create(ctx, sar); err != nil {
		return fmt.Errorf("%w: SubjectAccessReview: %s", auth.ErrAuthUnavailable, reviewErrorText(err))
	}
	if sar.Status.Allowed && !sar.Status.Denied {
		return nil
	}
	return fmt.Errorf("%w: %s", auth.ErrForbidden, deniedText(user.Username, access, sar.Status))
}

func deniedText(user string, access auth.DebugAccess, st authzv1.SubjectAccessReviewStatus) string {
	where := "in every namespace"
	if access.Namespace != "" {
		where = "in namespace " + access.Namespace
	}
	msg := fmt.Sprintf("user %q may not get %s/%s.%s %s", user, debugapi.ResourceProxies, access.Subresource, debugapi.Group, where)
	if st.Reason != "" {
		msg += ": " + st.Reason
	}
	if st.EvaluationError != "" {
		msg += " (" + st.EvaluationError + ")"
	}
	return msg
}

func extraOf(in map[string]authnv1.ExtraValue) map[string]authzv1.ExtraValue {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]authzv1.ExtraValue, len(in))
	for k, v := range in {
		out[k] = authzv1.ExtraValue(v)
	}
	return out
}
