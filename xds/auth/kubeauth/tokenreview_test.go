package kubeauth

import (
	"context"
	"errors"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/capstanmesh/capstan/xds/auth"
)

const testToken = "eyJhbGciOi.secret-token-value"

// reviewer answers TokenReviews with status, after checking the request.
func reviewer(t *testing.T, status authnv1.TokenReviewStatus, createErr error) client.Client {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return fake.NewClientBuilder().WithScheme(scheme).WithInterceptorFuncs(interceptor.Funcs{
		Create: func(_ context.Context, _ client.WithWatch, obj client.Object, _ ...client.CreateOption) error {
			tr, ok := obj.(*authnv1.TokenReview)
			if !ok {
				t.Fatalf("created %T", obj)
			}
			if tr.Spec.Token != testToken || !cmp.Equal(tr.Spec.Audiences, []string{"capstan"}) {
				t.Errorf("review spec = audiences %v, token match %v", tr.Spec.Audiences, tr.Spec.Token == testToken)
			}
			if createErr != nil {
				return createErr
			}
			tr.Status = status
			return nil
		},
	}).Build()
}

func podBoundUser() authnv1.UserInfo {
	return authnv1.UserInfo{
		Username: "system:serviceaccount:shop:web",
		Extra: map[string]authnv1.ExtraValue{
			extraPodName: {"web-0"},
			extraPodUID:  {"1234"},
		},
	}
}

func TestTokenReviewAuthenticator(t *testing.T) {
	ok := authnv1.TokenReviewStatus{Authenticated: true, Audiences: []string{"capstan"}, User: podBoundUser()}
	got, err := (&TokenReviewAuthenticator{Client: reviewer(t, ok, nil)}).Authenticate(context.Background(), testToken)
	if err != nil {
		t.Fatal(err)
	}
	want := auth.Caller{Namespace: "shop", ServiceAccount: "web", PodName: "web-0", PodUID: "1234"}
	if got != want {
		t.Errorf("caller = %+v, want %+v", got, want)
	}

	unbound := ok
	unbound.User = authnv1.UserInfo{Username: "system:serviceaccount:shop:web"}
	if got, err := (&TokenReviewAuthenticator{Client: reviewer(t, unbound, nil)}).Authenticate(context.Background(), testToken); err != nil || got.PodName != "" {
		t.Errorf("unbound token: %+v, %v; want no pod, no error", got, err)
	}
}

func TestTokenReviewAuthenticatorRefusals(t *testing.T) {
	user := podBoundUser()
	twoPods := podBoundUser()
	twoPods.Extra[extraPodName] = authnv1.ExtraValue{"a", "b"}
	tests := []struct {
		name      string
		status    authnv1.TokenReviewStatus
		createErr error
		want      string
		transient bool
	}{
		{name: "not authenticated", status: authnv1.TokenReviewStatus{Error: "[invalid bearer token " + testToken + "]"}, want: "not authenticated"},
		{name: "no audience", status: authnv1.TokenReviewStatus{Authenticated: true, User: user}, want: "audience"},
		{name: "other audience", status: authnv1.TokenReviewStatus{Authenticated: true, Audiences: []string{"api"}, User: user}, want: "audience"},
		{name: "not a ServiceAccount", status: authnv1.TokenReviewStatus{Authenticated: true, Audiences: []string{"capstan"},
			User: authnv1.UserInfo{Username: "alice"}}, want: "not a ServiceAccount"},
		{name: "malformed user", status: authnv1.TokenReviewStatus{Authenticated: true, Audiences: []string{"capstan"},
			User: authnv1.UserInfo{Username: "system:serviceaccount:shop"}}, want: "malformed"},
		{name: "two pods", status: authnv1.TokenReviewStatus{Authenticated: true, Audiences: []string{"capstan"}, User: twoPods}, want: "2 values"},
		{name: "API down", createErr: apierrors.NewServiceUnavailable("etcd " + testToken), want: "TokenReview", transient: true},
		{name: "forbidden", createErr: apierrors.NewForbidden(schema.GroupResource{Group: "authentication.k8s.io", Resource: "tokenreviews"}, "", errors.New("no")), want: "Forbidden", transient: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := (&TokenReviewAuthenticator{Client: reviewer(t, tt.status, tt.createErr)}).Authenticate(context.Background(), testToken)
			if err == nil {
				t.Fatal("authenticated")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error holds the token: %q", err)
			}
			if errors.Is(err, auth.ErrAuthUnavailable) != tt.transient {
				t.Errorf("errors.Is(err, ErrAuthUnavailable) = %v, want %v", !tt.transient, tt.transient)
			}
		})
	}
}
