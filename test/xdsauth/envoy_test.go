package xdsauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/internal/envoytest"
	"github.com/capstanmesh/capstan/pki"
	"github.com/capstanmesh/capstan/webhook/inject"
	"github.com/capstanmesh/capstan/xds/generate"
	"github.com/capstanmesh/capstan/xds/ir"
)

// TestEnvoySidecarACKsItsConfig starts the real Envoy with the bootstrap the
// injector renders for a pod, against the xDS server over TLS with the
// token exchange: Envoy's own gRPC STS call credentials trade the pod's
// projected ServiceAccount token (a real, pod-bound token reviewed by the
// API server), then Envoy subscribes over delta ADS and must ACK every type
// of the generator's config for that pod (listeners, routes, clusters,
// endpoints, SDS secrets signed by the built-in CA), and show it on its
// admin endpoint.
//
// What is changed from the pod, and why: the xDS address is
// localhost:<port> (Options of the injector, as a user would set it; the
// token exchange then is https://localhost/v1/token, which the same server
// also serves on 127.0.0.1:443, as the xDS Service maps 443 to the xDS
// port; binding 443 needs root, as CI runs); the root CA and token volumes become temporary
// directories (the mount paths in the arguments and environment are
// rewritten); the admin listens on port 0 (the bootstrap's 15000 may be
// taken on a shared machine; an edit of the bootstrap JSON, since Envoy's
// --config-yaml merge cannot set a field back to 0) and Envoy writes its
// address to a file; --use-dynamic-base-id is added; and the generated
// listeners that bind a port bind 127.0.0.1:0 instead of 0.0.0.0:<port>, so
// nothing on the host is exposed or collides. The proxy runs as the test's
// user, without the pod's capture rules (test/dataplane does that).
func TestEnvoySidecarACKsItsConfig(t *testing.T) {
	envoy := envoytest.Path(t)
	ns := env.NewNamespace(t)
	w := newWorkload(t, ns, "web", "web-0", "10.1.0.7")
	s := startTLSServer(t)
	serveExchangeOn443(t, s)
	_, port, _ := net.SplitHostPort(s.addr)

	// The injector's default token exchange URL for this xDS address:
	// https://localhost/v1/token, port 443.
	cfg := inject.ConfigFromMesh(nil, inject.Options{XDSAddress: "localhost:" + port})
	injected, err := inject.Inject(w.pod.DeepCopy(), cfg)
	if err != nil {
		t.Fatalf("Inject: %v", err)
	}
	res := publishSidecarConfig(t, s, w)

	files := podFiles(t, w)
	proxy := proxyContainer(t, injected)
	args, environ := proxyCommandLine(t, proxy, w, files)
	adminPath := filepath.Join(t.TempDir(), "admin-address")
	args = append(args, "--use-dynamic-base-id", "--admin-address-path", adminPath)
	out := startEnvoy(t, envoy, args, environ)

	waitAllACKed(t, s, w.nodeID, out)
	admin := "http://" + readWhenWritten(t, adminPath, out)
	dump := adminGet(t, admin+"/config_dump?include_eds")
	for _, l := range res.Listeners {
		wantIn(t, "config_dump", dump, `"name": "`+l.GetName()+`"`)
	}
	for _, c := range res.Clusters {
		wantIn(t, "config_dump", dump, `"name": "`+c.GetName()+`"`)
	}
	for _, r := range res.Routes {
		wantIn(t, "config_dump", dump, `"name": "`+r.GetName()+`"`)
	}
	wantIn(t, "config_dump", dump, `"name": "`+generate.SecretWorkloadCert+`"`)
	wantIn(t, "config_dump", dump, `"name": "`+generate.SecretRootCA+`"`)
	wantIn(t, "clusters", adminGet(t, admin+"/clusters"), "outbound|9080||reviews."+ns+".svc.cluster.local::10.1.1.1:9080")
	wantIn(t, "certs", adminGet(t, admin+"/certs"), pki.SpiffeID("cluster.local", ns, "web"))
	if ready := adminGet(t, admin+"/ready"); strings.TrimSpace(ready) != "LIVE" {
		t.Errorf("/ready = %q, want LIVE", ready)
	}
	s.checkNoTokenLogged(t, files.token)
}

// serveExchangeOn443 serves the xDS server (for the token exchange) on
// 127.0.0.1:443 too, where the default exchange URL of a localhost xDS
// address points.
func serveExchangeOn443(t *testing.T, s *xdsServer) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:443")
	if errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EACCES) {
		t.Skipf("serving the token exchange on 127.0.0.1:443 needs root (CI runs as root): %v", err)
	}
	if err != nil {
		t.Fatalf("serving the token exchange on 127.0.0.1:443: %v", err)
	}
	serve(t, s.Server, lis)
}

// publishSidecarConfig generates the sidecar's config for a small STRICT
// mesh (one service it calls, one it serves) with its SDS secrets, rebinds
// the listeners that bind a port to 127.0.0.1:0, and publishes it.
func publishSidecarConfig(t *testing.T, s *xdsServer, w *workload) *generate.Resources {
	t.Helper()
	td := "cluster.local"
	svc := func(name, ip string, port, target uint32, endpoint string) *ir.Service {
		id := ir.SpiffeID(td, w.ns, name)
		out := &ir.Service{
			Name: name, Namespace: w.ns, FQDN: name + "." + w.ns + ".svc.cluster.local",
			ClusterIPs: []string{ip},
			Ports:      []*ir.ServicePort{{Name: "http", Port: port, Protocol: ir.ProtocolHTTP, TargetPort: target}},
			Identities: []string{id},
		}
		out.Endpoints = []*ir.Endpoint{{Address: endpoint, Ports: map[string]uint32{"http": target}, Pod: w.ns + "/" + name + "-0", Identity: id}}
		return out
	}
	proxy := &ir.Proxy{
		ID: w.nodeID, Kind: ir.ProxySidecar, Name: w.pod.Name, Namespace: w.ns, IP: w.pod.Status.PodIP,
		ServiceAccount: w.sa, Identity: ir.SpiffeID(td, w.ns, w.sa),
		Inbound: []*ir.InboundPort{{Port: 8080, Protocol: ir.ProtocolHTTP, MTLS: ir.MTLSStrict, Services: []string{w.ns + "/web:80"}}},
	}
	mesh := &ir.Mesh{
		TrustDomain: td, MTLSMode: ir.MTLSStrict,
		Services: []*ir.Service{svc("reviews", "10.96.0.20", 9080, 9080, "10.1.1.1"), svc("web", "10.96.0.21", 80, 8080, w.pod.Status.PodIP)},
		Proxies:  []*ir.Proxy{proxy},
	}
	res, err := generate.ForProxy(mesh, proxy)
	if err != nil {
		t.Fatalf("ForProxy: %v", err)
	}
	for i, l := range res.Listeners {
		res.Listeners[i] = rebindToLoopback(l)
	}
	res.Secrets = workloadSecrets(t, w)
	if _, err := s.SetProxyResources(w.nodeID, res.ByType()); err != nil {
		t.Fatalf("SetProxyResources: %v", err)
	}
	return res
}

// rebindToLoopback is a copy of a listener that binds 127.0.0.1:0 if it
// binds a port at all.
func rebindToLoopback(l *listenerv3.Listener) *listenerv3.Listener {
	if l.GetBindToPort() != nil && !l.GetBindToPort().GetValue() {
		return l
	}
	l = proto.Clone(l).(*listenerv3.Listener)
	l.Address = &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 0},
	}}}
	return l
}

// workloadSecrets are the SDS secrets of the workload: a certificate for its
// SPIFFE ID signed by the built-in CA, its key, and the mesh bundle.
func workloadSecrets(t *testing.T, w *workload) []*tlsv3.Secret {
	t.Helper()
	ctx := context.Background()
	id := pki.Identity{TrustDomain: "cluster.local", Namespace: w.ns, ServiceAccount: w.sa}
	key, csr, err := pki.NewKeyAndCSR(id)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := meshCA.Sign(ctx, pki.CertificateRequest{CSR: csr, Identity: id, TTL: time.Hour})
	if err != nil {
		t.Fatalf("signing the workload certificate: %v", err)
	}
	keyPEM, err := key.PEM()
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := meshCA.TrustBundle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := generate.Secrets(generate.IdentitySecrets{ChainPEM: cert.ChainPEM, KeyPEM: keyPEM, BundlePEM: bundle})
	if err != nil {
		t.Fatalf("Secrets: %v", err)
	}
	return secrets
}

// podMounts are the temporary directories standing for the proxy's volume
// mounts, and the token in them.
type podMounts struct {
	byMountPath map[string]string
	token       string
}

// podFiles fills the root CA and token volumes as the kubelet would: the
// mesh bundle, and a pod-bound token for audience capstan.
func podFiles(t *testing.T, w *workload) podMounts {
	t.Helper()
	bundle, err := meshCA.TrustBundle(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := podMounts{byMountPath: map[string]string{}, token: w.token(t, inject.TokenAudience)}
	for mount, file := range map[string]struct {
		name string
		data []byte
	}{
		inject.RootCADir:   {inject.RootCAKey, bundle},
		inject.TokenDir:    {filepath.Base(inject.TokenPath), []byte(m.token)},
		inject.EnvoyTmpDir: {},
	} {
		dir := t.TempDir()
		if file.name != "" {
			if err := os.WriteFile(filepath.Join(dir, file.name), file.data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		m.byMountPath[mount] = dir
	}
	return m
}

func proxyContainer(t *testing.T, pod *corev1.Pod) *corev1.Container {
	t.Helper()
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			if list[i].Name == meshv1alpha1.ProxyContainerName {
				return &list[i]
			}
		}
	}
	t.Fatal("the injected pod has no proxy container")
	return nil
}

// proxyCommandLine is the proxy's Envoy command line and environment as the
// kubelet would run them for the workload's pod, with the mounts in the
// temporary directories and the admin on port 0.
func proxyCommandLine(t *testing.T, c *corev1.Container, w *workload, m podMounts) (args, environ []string) {
	t.Helper()
	fields := map[string]string{
		"metadata.name": w.pod.Name, "metadata.namespace": w.pod.Namespace,
		"status.podIP": w.pod.Status.PodIP, "spec.serviceAccountName": w.pod.Spec.ServiceAccountName,
	}
	var pairs []string
	for _, vm := range c.VolumeMounts {
		dir, ok := m.byMountPath[vm.MountPath]
		if !ok {
			t.Fatalf("the proxy mounts %s, which this test does not provide", vm.MountPath)
		}
		pairs = append(pairs, vm.MountPath+"/", dir+"/")
	}
	paths := strings.NewReplacer(pairs...)
	vars := map[string]string{}
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
			v = "" // an optional ConfigMap key (root fingerprints): absent here, as the kubelet would leave it
		} else if e.ValueFrom != nil {
			var ok bool
			if v, ok = fields[e.ValueFrom.FieldRef.FieldPath]; !ok {
				t.Fatalf("env %s: no value for %s", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
		}
		vars[e.Name] = paths.Replace(v)
		environ = append(environ, e.Name+"="+vars[e.Name])
	}
	args = envoytest.ExpandArgs(c.Args, vars)
	for i := range args {
		args[i] = paths.Replace(args[i])
		if i > 0 && args[i-1] == "--config-yaml" {
			args[i] = withAdminPortZero(t, args[i])
		}
	}
	return args, environ
}

func withAdminPortZero(t *testing.T, bootstrap string) string {
	t.Helper()
	var b map[string]any
	if err := json.Unmarshal([]byte(bootstrap), &b); err != nil {
		t.Fatalf("the bootstrap is not JSON: %v", err)
	}
	sa, ok := b["admin"].(map[string]any)["address"].(map[string]any)["socket_address"].(map[string]any)
	if !ok {
		t.Fatal("the bootstrap has no admin socket address")
	}
	sa["port_value"] = 0
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// syncBuffer is Envoy's output, written by the process and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// envoyProcess is a running Envoy and its output.
type envoyProcess struct {
	out    *syncBuffer
	exited chan struct{}
	err    error // set before exited is closed
}

// startEnvoy runs Envoy until the test ends; its output is logged if the test fails.
func startEnvoy(t *testing.T, envoy string, args, environ []string) *envoyProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, envoy, args...)
	p := &envoyProcess{out: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.Env = append(os.Environ(), environ...)
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting Envoy: %v", err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		cancel()
		<-p.exited
		if t.Failed() {
			t.Logf("Envoy's output:\n%s", p.out)
		}
	})
	return p
}

// alive fails the test if Envoy has exited.
func (p *envoyProcess) alive(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
		t.Fatalf("Envoy exited: %v", p.err)
	default:
	}
}

// waitAllACKed waits until the node has ACKed the published version of
// every resource type, and fails on a NACK.
func waitAllACKed(t *testing.T, s *xdsServer, nodeID string, p *envoyProcess) {
	t.Helper()
	typesWanted := []string{resourcev3.ListenerType, resourcev3.RouteType, resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.SecretType}
	poll(t, "Envoy ACKs every resource type", p, func() (bool, string) {
		st, ok := s.ProxyStatus(nodeID)
		if !ok {
			return false, "no status for the node"
		}
		var missing []string
		for _, typ := range typesWanted {
			ts := st.Types[typ]
			if ts.LastNack != nil {
				t.Fatalf("Envoy NACKed %s: %+v", typ, *ts.LastNack)
			}
			if ts.AckedVersion == "" || ts.AckedVersion != st.Published[typ] {
				missing = append(missing, typ)
			}
		}
		return len(missing) == 0, fmt.Sprintf("not ACKed: %v (streams %d)", missing, st.Streams)
	})
}

// poll calls check until it holds or waitTimeout passes.
func poll(t *testing.T, what string, p *envoyProcess, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		p.alive(t)
		ok, state := check()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %s", what, waitTimeout, state)
		}
		<-tick.C
	}
}

// readWhenWritten waits for Envoy to write a file and returns its content.
func readWhenWritten(t *testing.T, path string, p *envoyProcess) string {
	t.Helper()
	var content string
	poll(t, "Envoy writes "+path, p, func() (bool, string) {
		b, err := os.ReadFile(path)
		content = strings.TrimSpace(string(b))
		return err == nil && content != "", fmt.Sprint(err)
	})
	return content
}

func adminGet(t *testing.T, url string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	return string(b)
}

func wantIn(t *testing.T, what, text, want string) {
	t.Helper()
	if !strings.Contains(text, want) {
		t.Errorf("Envoy's %s does not show %s", what, want)
	}
}
