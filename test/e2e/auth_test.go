package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/capstanmesh/capstan/controllers/certificates"
	"github.com/capstanmesh/capstan/internal/app"
	"github.com/capstanmesh/capstan/xds/auth/kubeauth"
	"github.com/capstanmesh/capstan/xds/server"
)

// A proxyless client in production reaches the xDS server over TLS and
// authenticates with its projected token. grpc-go supports both in its
// bootstrap ("tls" channel credentials, "jwt_token_file" call credentials),
// the latter behind GRPC_EXPERIMENTAL_XDS_BOOTSTRAP_CALL_CREDS, which grpc-go
// reads when it starts: so the client runs as a separate process, this test
// binary started again with clientProcessEnv set.
const (
	clientProcessEnv = "CAPSTAN_E2E_CLIENT_TARGET"
	clientTimeoutEnv = "CAPSTAN_E2E_CLIENT_TIMEOUT"
	clientCalls      = 10
)

// runClientProcess makes clientCalls calls to target through the xDS
// resolver (bootstrap from GRPC_XDS_BOOTSTRAP) and prints each answer's
// backend version; it returns 1 at the first failure.
func runClientProcess(target string) int {
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = conn.Close() }()
	timeout := 20 * time.Second
	if d, err := time.ParseDuration(os.Getenv(clientTimeoutEnv)); err == nil {
		timeout = d
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c := testgrpc.NewTestServiceClient(conn)
	for range clientCalls {
		resp, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{FillServerId: true}, grpc.WaitForReady(true))
		if err != nil {
			fmt.Fprintln(os.Stderr, "call failed:", err)
			return 1
		}
		fmt.Println(resp.GetHostname())
	}
	return 0
}

// startSecureMesh is startMesh with the operator's production xDS setup:
// the certificate manager (built-in CA, root kept in the mesh's namespace)
// serving a certificate for "localhost", TLS, TokenReview authentication
// and pod binding.
func startSecureMesh(t *testing.T) (*mesh, *certificates.Manager) {
	t.Helper()
	var certs *certificates.Manager
	m := startMeshWith(t, func(mgr ctrl.Manager, ns string, opts *app.PipelineOptions) error {
		var err error
		certs, err = certificates.NewFor(mgr, certificates.Options{
			Namespace: ns, ServingDNSNames: []string{"localhost"},
		})
		if err != nil {
			return err
		}
		opts.Secrets, opts.GetCertificate = certs, certs.GetCertificate
		opts.Authenticator = &kubeauth.TokenReviewAuthenticator{Client: mgr.GetClient(), Audience: kubeauth.XDSTokenAudience}
		opts.Pods = kubeauth.PodLookup{Reader: mgr.GetClient()}
		return mgr.Add(certs)
	})
	return m, certs
}

// clientToken is a projected-style token of the client pod's ServiceAccount
// (audience capstan, bound to pod).
func (m *mesh) clientToken(t *testing.T, sa, pod string) string {
	t.Helper()
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	p, err := cs.CoreV1().Pods(m.ns).Get(context.Background(), pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tr := &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{
		Audiences:         []string{kubeauth.XDSTokenAudience},
		ExpirationSeconds: ptr.To[int64](600),
		BoundObjectRef:    &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod, UID: p.UID},
	}}
	out, err := cs.CoreV1().ServiceAccounts(m.ns).CreateToken(context.Background(), sa, tr, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out.Status.Token
}

// secureBootstrap writes the client's bootstrap: the xDS server as
// localhost:<port> over TLS verified against caFile, the token file as
// call credentials.
func (m *mesh) secureBootstrap(t *testing.T, caFile, tokenFile string) string {
	t.Helper()
	_, port, _ := net.SplitHostPort(m.xdsAddr)
	b := map[string]any{
		"xds_servers": []any{map[string]any{
			"server_uri":      "localhost:" + port,
			"channel_creds":   []any{map[string]any{"type": "tls", "config": map[string]any{"ca_certificate_file": caFile}}},
			"call_creds":      []any{map[string]any{"type": "jwt_token_file", "config": map[string]any{"jwt_token_file": tokenFile}}},
			"server_features": []string{"xds_v3"},
		}},
		"node": map[string]any{"id": m.nodeID(), "locality": map[string]any{"zone": "e2e"}},
	}
	raw, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "bootstrap.json", raw)
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runClient starts the client process with bootstrap and returns its
// standard output and error, and whether it succeeded.
func (m *mesh) runClient(t *testing.T, bootstrap string, timeout time.Duration) (stdout, stderr string, ok bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		clientProcessEnv+"="+m.target(),
		"GRPC_XDS_BOOTSTRAP="+bootstrap,
		"GRPC_XDS_BOOTSTRAP_CONFIG=",
		"GRPC_EXPERIMENTAL_XDS_BOOTSTRAP_CALL_CREDS=true",
		clientTimeoutEnv+"="+timeout.String(),
	)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err == nil
}

func authFailures(t *testing.T, reason string) float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "capstan_xds_auth_failures_total" {
			continue
		}
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return mt.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestProxylessClientOverAuthenticatedTLS: a grpc-go client whose
// bootstrap has only what a pod has (the mesh root, its projected token
// file and its node ID) gets its config over TLS from an authenticating
// server and reaches the backend; the same client presenting another pod's
// token is refused (pod_mismatch) and reaches nothing.
func TestProxylessClientOverAuthenticatedTLS(t *testing.T) {
	m, certs := startSecureMesh(t)
	b := m.addBackend(t, "echo-v1", "v1")
	envtestEventually(t, func() error {
		if len(certs.TrustBundle()) == 0 {
			return errors.New("no trust bundle yet")
		}
		return nil
	})
	caFile := writeFile(t, "ca.pem", certs.TrustBundle())

	token := writeFile(t, "token", []byte(m.clientToken(t, clientPod, clientPod)))
	out, errOut, ok := m.runClient(t, m.secureBootstrap(t, caFile, token), 30*time.Second)
	if !ok {
		t.Fatalf("client failed:\n%s\n%s", out, errOut)
	}
	if got := strings.Count(out, "v1\n"); got != clientCalls {
		t.Errorf("%d of %d calls answered by v1:\n%s", got, clientCalls, out)
	}
	if got := b.calls.Load(); got != clientCalls {
		t.Errorf("backend saw %d calls, want %d", got, clientCalls)
	}

	m.create(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "intruder"}})
	m.create(t, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "intruder"},
		Spec: corev1.PodSpec{ServiceAccountName: "intruder",
			Containers: []corev1.Container{{Name: "app", Image: "example/app:1"}}},
	})
	before := authFailures(t, server.ReasonPodMismatch)
	stolen := writeFile(t, "token", []byte(m.clientToken(t, "intruder", "intruder")))
	out, _, ok = m.runClient(t, m.secureBootstrap(t, caFile, stolen), 5*time.Second)
	if ok {
		t.Errorf("a client with another pod's token got answers:\n%s", out)
	}
	if got := authFailures(t, server.ReasonPodMismatch) - before; got < 1 {
		t.Errorf("pod_mismatch refusals: %v, want at least 1", got)
	}
	if got := b.calls.Load(); got != clientCalls {
		t.Errorf("backend saw %d calls after the refused client, want still %d", got, clientCalls)
	}
}
