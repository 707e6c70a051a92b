package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/test/envtest"
	"github.com/capstanmesh/capstan/test/install"
	"github.com/capstanmesh/capstan/webhook/handler"
)

// olmWebhookCertDir is where OLM mounts the webhook serving certificate
// (tls.crt, tls.key) into the Deployment of a CSV with webhook definitions.
const olmWebhookCertDir = "/tmp/k8s-webhook-server/serving-certs"

// bundleDeployment returns the CSV's Deployment as OLM runs it: with the
// webhook certificate volume OLM adds, mounted at olmWebhookCertDir.
func bundleDeployment() (install.Manifest, error) {
	m, err := install.ReadFile(filepath.Join(env.RepoRoot, "bundle", "manifests", "capstan.clusterserviceversion.yaml"))
	if err != nil {
		return nil, err
	}
	deployments, _, err := unstructured.NestedSlice(m[0].Object, "spec", "install", "spec", "deployments")
	if err != nil || len(deployments) != 1 {
		return nil, fmt.Errorf("the CSV's deployments %v: %w", deployments, err)
	}
	spec, ok := deployments[0].(map[string]any)["spec"].(map[string]any)
	if !ok {
		return nil, errors.New("the CSV's deployment has no spec")
	}
	d := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "capstan-manager"}, "spec": spec}}
	mount := map[string]any{"name": "webhook-cert", "mountPath": olmWebhookCertDir}
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if len(containers) != 1 {
		return nil, fmt.Errorf("the CSV's deployment has %d containers", len(containers))
	}
	c := containers[0].(map[string]any)
	mounts, _ := c["volumeMounts"].([]any)
	c["volumeMounts"] = append(mounts, mount)
	if err := unstructured.SetNestedSlice(d.Object, containers, "spec", "template", "spec", "containers"); err != nil {
		return nil, err
	}
	return install.Manifest{d}, nil
}

// listenFlags are the flags naming a listen address; the test moves them to
// free loopback ports (other test processes on the machine may hold the
// fixed ones) and keeps every other flag exactly as rendered.
var listenFlags = map[string]bool{
	"metrics-bind-address": true, "health-probe-bind-address": true, "xds-address": true, "webhook-port": true,
	"debug-address": true,
}

// TestRunFromInstallManifest starts the manager with the exact arguments of
// the rendered Deployment, dist/install.yaml (webhook certificates from the
// mesh CA), config/certmanager (from the directory cert-manager mounts) and
// the bundle's CSV (from the directory OLM mounts), as the manager's ServiceAccount bound to the generated roles:
// every flag must parse, the mounted paths are faked with files, and the
// manager serves /readyz, xDS over TLS and the admission webhooks.
func TestRunFromInstallManifest(t *testing.T) {
	for _, tc := range []struct {
		name   string
		render func() (install.Manifest, error)
	}{
		{"dist/install.yaml", func() (install.Manifest, error) { return install.Installer(env.RepoRoot) }},
		{"config/certmanager", func() (install.Manifest, error) {
			return install.Kustomize(env.Kubectl, filepath.Join(env.RepoRoot, "config", "certmanager"))
		}},
		{"bundle", bundleDeployment},
	} {
		t.Run(strings.ReplaceAll(tc.name, "/", "_"), func(t *testing.T) {
			m, err := tc.render()
			if err != nil {
				t.Fatal(err)
			}
			var d appsv1.Deployment
			if err := m.Into("Deployment", "capstan-manager", &d); err != nil {
				t.Fatal(err)
			}
			runRendered(t, d)
		})
	}
}

func runRendered(t *testing.T, d appsv1.Deployment) {
	operatorNS := env.NewNamespace(t)
	user, _ := installBaseRBAC(t, operatorNS)
	c := d.Spec.Template.Spec.Containers[0]
	setRenderedEnv(t, c, operatorNS)
	addrs := map[string]string{}
	for name := range listenFlags {
		addrs[name] = freeAddr(t)
	}
	webhookRoots, args := fakeMounts(t, c, operatorNS)
	args = moveListeners(t, args, addrs)
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	opts := parseFlags(fs, args)
	if fs.NArg() != 0 || !fs.Parsed() {
		t.Fatalf("the rendered args %v leave %v unparsed", c.Args, fs.Args())
	}
	if opts.Namespace != operatorNS || opts.XDSPlaintext {
		t.Fatalf("options %+v: want namespace %s from the downward API and TLS", opts, operatorNS)
	}
	opts.reuseControllerNames = true

	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runWithConfig(ctx, cfg, opts) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	waitReady(t, addrs["health-probe-bind-address"], done)
	meshRoots, _ := checkXDSServing(t, operatorNS, addrs["xds-address"])
	if webhookRoots == nil {
		webhookRoots = meshRoots
	}
	checkAdmission(t, addrs["webhook-port"], webhookDNSNames(operatorNS)[0], webhookRoots)
	checkDebugEndpoint(t, addrs["debug-address"], operatorNS, meshRoots)
}

// setRenderedEnv sets the container's environment as the kubelet would:
// POD_NAMESPACE from the downward API is namespace.
func setRenderedEnv(t *testing.T, c corev1.Container, namespace string) {
	t.Helper()
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			t.Setenv(e.Name, namespace)
		case e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil:
			// GOMEMLIMIT from the memory limit: the Go runtime reads it at start only.
		case e.ValueFrom == nil:
			t.Setenv(e.Name, e.Value)
		default:
			t.Fatalf("env %s: source %+v not modelled", e.Name, e.ValueFrom)
		}
	}
}

// fakeMounts replaces each mount path in the args by a temporary directory.
// A Secret volume's directory gets tls.crt and tls.key for the webhook
// Service, signed by a CA it returns (nil when no Secret is mounted).
func fakeMounts(t *testing.T, c corev1.Container, namespace string) (*x509.CertPool, []string) {
	t.Helper()
	args := append([]string(nil), c.Args...)
	var roots *x509.CertPool
	for _, vm := range c.VolumeMounts {
		dir := t.TempDir()
		used := false
		for i, a := range args {
			if name, value, ok := strings.Cut(a, "="); ok && value == vm.MountPath {
				args[i] = name + "=" + dir
				used = true
			}
		}
		if used {
			roots = writeServingCert(t, dir, webhookDNSNames(namespace))
		}
	}
	return roots, args
}

// moveListeners rewrites the listen-address flags to addrs (the webhook
// port flag takes the port alone).
func moveListeners(t *testing.T, args []string, addrs map[string]string) []string {
	t.Helper()
	out := make([]string, 0, len(args))
	for _, a := range args {
		name, _, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !ok || !listenFlags[name] {
			out = append(out, a)
			continue
		}
		value := addrs[name]
		if name == "webhook-port" {
			_, value, _ = net.SplitHostPort(value)
		}
		out = append(out, "--"+name+"="+value)
	}
	return out
}

func writeServingCert(t *testing.T, dir string, dnsNames []string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: dnsNames[0]}, DNSNames: dnsNames,
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	for name, data := range map[string][]byte{
		"tls.crt": certPEM,
		"tls.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return pool
}

func waitReady(t *testing.T, probeAddr string, done chan error) {
	t.Helper()
	envtest.Eventually(t, 30*time.Second, func() error {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("the manager exited: %v", err)
		default:
		}
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
}

// checkAdmission posts an AdmissionReview of a valid MeshRoute to the
// validating webhook as the API server would (TLS verified against roots
// for serverName) and expects it allowed.
func checkAdmission(t *testing.T, addr, serverName string, roots *x509.CertPool) {
	t.Helper()
	mr := &meshv1alpha1.MeshRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: meshv1alpha1.GroupVersion.String(), Kind: "MeshRoute"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "reviews"},
		Spec: meshv1alpha1.MeshRouteSpec{Hosts: []string{"reviews"},
			HTTP: []meshv1alpha1.HTTPRule{{Route: []meshv1alpha1.Destination{{Host: "reviews"}}}}},
	}
	raw, err := json.Marshal(mr)
	if err != nil {
		t.Fatal(err)
	}
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: types.UID("install-test"), Operation: admissionv1.Create,
			Kind:      metav1.GroupVersionKind{Group: meshv1alpha1.GroupVersion.Group, Version: "v1alpha1", Kind: "MeshRoute"},
			Resource:  metav1.GroupVersionResource{Group: meshv1alpha1.GroupVersion.Group, Version: "v1alpha1", Resource: "meshroutes"},
			Namespace: "shop", Name: "reviews", Object: runtime.RawExtension{Raw: raw}},
	}
	body, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: serverName}}}
	var got admissionv1.AdmissionReview
	envtest.Eventually(t, 30*time.Second, func() error {
		resp, err := hc.Post("https://"+addr+handler.PathValidateMeshRoute, "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		defer func() { _ = resp.Body.Close() }()
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", resp.Status, data)
		}
		return json.Unmarshal(data, &got)
	})
	if got.Response == nil || got.Response.UID != review.Request.UID || !got.Response.Allowed {
		t.Errorf("the webhook answered %+v, want the MeshRoute allowed", got.Response)
	}
}
