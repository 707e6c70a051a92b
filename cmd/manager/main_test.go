package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/test/envtest"
	"github.com/capstanmesh/capstan/xds/server"
)

var env *envtest.Env

func TestMain(m *testing.M) { os.Exit(envtest.Run(m, &env)) }

func TestParseFlagsDefaults(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "")
	opts := parseFlags(flag.NewFlagSet("manager", flag.ContinueOnError), nil)
	if opts.MetricsAddr != ":8080" || opts.ProbeAddr != ":8081" || opts.LeaderElect || opts.Namespace != "capstan-system" ||
		opts.XDSAddr != ":15012" || opts.XDSPlaintext {
		t.Errorf("defaults: %+v", opts)
	}
	if opts.XDSLimits != (server.Limits{}).WithDefaults() || opts.XDSReviewLimits != (server.ReviewLimits{}).WithDefaults() {
		t.Errorf("xDS limits %+v %+v, want the server's defaults", opts.XDSLimits, opts.XDSReviewLimits)
	}
	custom := parseFlags(flag.NewFlagSet("manager", flag.ContinueOnError), []string{
		"--xds-max-concurrent-streams=7", "--xds-max-connection-age=1h", "--xds-token-reviews-per-second-per-peer=0.5"})
	if custom.XDSLimits.MaxConcurrentStreams != 7 || custom.XDSLimits.MaxConnectionAge != time.Hour ||
		custom.XDSReviewLimits.PerSecondPerPeer != 0.5 {
		t.Errorf("xDS limit flags not applied: %+v %+v", custom.XDSLimits, custom.XDSReviewLimits)
	}
	t.Setenv("POD_NAMESPACE", "mesh-ops")
	if opts := parseFlags(flag.NewFlagSet("manager", flag.ContinueOnError), nil); opts.Namespace != "mesh-ops" {
		t.Errorf("namespace %q, want $POD_NAMESPACE", opts.Namespace)
	}
}

// TestRun runs the operator against the control plane: it serves /readyz,
// accepts a MeshRoute, publishes the mesh root in an injection-enabled
// namespace, and serves xDS over TLS with a certificate for its Service
// that verifies against that root, and the admission webhooks with a
// certificate from the mesh CA for their Service; then it stops when its
// context ends.
func TestRun(t *testing.T) {
	t.Setenv("KUBECONFIG", env.Kubeconfig)
	operatorNS := env.NewNamespace(t)
	probeAddr, xdsAddr, webhookAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	_, webhookPort, _ := net.SplitHostPort(webhookAddr)
	port, err := strconv.Atoi(webhookPort)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, options{MetricsAddr: "0", ProbeAddr: probeAddr, Namespace: operatorNS, XDSAddr: xdsAddr,
			WebhookMeshCerts: true, WebhookPort: port, reuseControllerNames: true,
			MutatingWebhookConfiguration: "none", ValidatingWebhookConfiguration: "none"})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	envtest.Eventually(t, 20*time.Second, func() error {
		resp, err := http.Get("http://" + probeAddr + "/readyz")
		if err != nil {
			return err
		}
		defer func() { _ = resp.Body.Close() }()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %s", resp.Status)
		}
		return nil
	})

	ns := env.NewNamespace(t)
	mr := &meshv1alpha1.MeshRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "reviews"},
		Spec: meshv1alpha1.MeshRouteSpec{
			Hosts: []string{"reviews"},
			HTTP:  []meshv1alpha1.HTTPRule{{Route: []meshv1alpha1.Destination{{Host: "reviews"}}}},
		},
	}
	if err := env.Client.Create(ctx, mr); err != nil {
		t.Fatal(err)
	}
	envtest.Eventually(t, 20*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(mr), mr); err != nil {
			return err
		}
		for _, c := range mr.Status.Conditions {
			if c.Type == meshv1alpha1.ConditionAccepted && c.Status == metav1.ConditionTrue {
				return nil
			}
		}
		return errors.New("MeshRoute not accepted yet")
	})
	roots, _ := checkXDSServing(t, operatorNS, xdsAddr)
	checkServing(t, webhookAddr, webhookDNSNames(operatorNS)[0], roots, "")
}

// checkXDSServing waits for the root CA ConfigMap in an enabled namespace,
// then makes a TLS handshake with the xDS server as a proxy would: ALPN h2,
// server name the xDS Service's, verified against that root, which it
// returns, as a pool and as the PEM the ConfigMap holds.
func checkXDSServing(t *testing.T, operatorNS, xdsAddr string) (*x509.CertPool, []byte) {
	t.Helper()
	ctx := context.Background()
	app := env.NewNamespace(t)
	ns := &corev1.Namespace{}
	if err := env.Client.Get(ctx, client.ObjectKey{Name: app}, ns); err != nil {
		t.Fatal(err)
	}
	ns.Labels[meshv1alpha1.LabelInject] = meshv1alpha1.InjectEnabled
	if err := env.Client.Update(ctx, ns); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	var pem []byte
	envtest.Eventually(t, 30*time.Second, func() error {
		cm := &corev1.ConfigMap{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: app, Name: meshv1alpha1.RootCAConfigMapName}, cm); err != nil {
			return err
		}
		pem = []byte(cm.Data[meshv1alpha1.RootCAConfigMapKey])
		if !roots.AppendCertsFromPEM(pem) {
			return errors.New("the root CA ConfigMap holds no certificate")
		}
		return nil
	})
	checkServing(t, xdsAddr, xdsDNSNames(operatorNS)[0], roots, "h2")
	return roots, pem
}

// checkServing makes a TLS handshake with addr as serverName, verified
// against roots, offering ALPN protocol proto when set.
func checkServing(t *testing.T, addr, serverName string, roots *x509.CertPool, proto string) {
	t.Helper()
	cfg := &tls.Config{RootCAs: roots, ServerName: serverName}
	if proto != "" {
		cfg.NextProtos = []string{proto}
	}
	var conn *tls.Conn
	envtest.Eventually(t, 30*time.Second, func() error {
		var err error
		conn, err = tls.Dial("tcp", addr, cfg)
		return err
	})
	defer func() { _ = conn.Close() }()
	if p := conn.ConnectionState().NegotiatedProtocol; p != proto {
		t.Errorf("%s negotiated %q, want %q", addr, p, proto)
	}
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}
