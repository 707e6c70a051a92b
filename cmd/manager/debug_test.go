package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/capstanmesh/capstan/test/envtest"
	"github.com/capstanmesh/capstan/xds/debugapi"
)

// checkDebugEndpoint: the manager serves the debug endpoint over TLS with a
// mesh CA certificate for the debug Service's name, and authorizes callers
// with the generated roles' TokenReview and SubjectAccessReview: no token
// is 401, a valid token of a user without the proxies resource is 403.
func checkDebugEndpoint(t *testing.T, addr, namespace string, roots *x509.CertPool) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: debugDNSNames(namespace)[0]}}}
	defer c.CloseIdleConnections()
	token := nobodyToken(t, namespace)
	for _, tc := range []struct {
		token string
		want  int
	}{{"", http.StatusUnauthorized}, {token, http.StatusForbidden}} {
		envtest.Eventually(t, 30*time.Second, func() error {
			req, err := http.NewRequest(http.MethodGet, "https://"+addr+debugapi.PathProxies, nil)
			if err != nil {
				return err
			}
			if tc.token != "" {
				req.Header.Set(debugapi.TokenHeader, tc.token)
			}
			resp, err := c.Do(req)
			if err != nil {
				return err
			}
			defer func() { _ = resp.Body.Close() }()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want {
				return fmt.Errorf("status %d, want %d: %s", resp.StatusCode, tc.want, body)
			}
			return nil
		})
	}
}

// nobodyToken is the token of a ServiceAccount with no role.
func nobodyToken(t *testing.T, namespace string) string {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "nobody"}}
	if err := env.Client.Create(context.Background(), sa); err != nil {
		t.Fatal(err)
	}
	tr := &authnv1.TokenRequest{}
	if err := env.Client.SubResource("token").Create(context.Background(), sa, tr); err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}
