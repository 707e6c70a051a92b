package dataplane

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/test/envtest"
)

// The mTLS edge cases real clusters hit (issue #15), through real sidecars.

// TestMixedEndpoints: halfway through a rollout of injection, the Service
// has one pod with a sidecar (under a namespace-wide STRICT policy, so it
// accepts only mTLS) and one without (plaintext only). A meshed client's
// calls all succeed and reach both pods: its sidecar originates mTLS to the
// first (whose app sees the client's SPIFFE ID) and plaintext to the second
// (whose app sees no client certificate).
func TestMixedEndpoints(t *testing.T) {
	needRoot(t)
	ns := meshNamespace(t)
	peerAuth(t, ns, "default", meshv1alpha1.PeerMTLSStrict, nil)
	svc := createService(t, ns, "server", "server", httpPort(80, appPort))
	meshed := httpServerPod(t, ns, "server-meshed")
	plain := startPod(t, podSpec{
		name: "server-plain", namespace: ns, labels: map[string]string{"app": "server"}, noInject: true,
		app: &AppConfig{Mode: HTTPServer, Port: appPort}, ports: []corev1.ContainerPort{{Name: "http", ContainerPort: appPort}},
	})
	setEndpoints(t, svc, meshed, plain)
	client := startPod(t, podSpec{name: "client", namespace: ns})
	waitEndpoints(t, client, ns, svc.Name, 2)
	url := serviceURL(svc, "/mixed")
	envtest.Eventually(t, wait, func() error {
		for _, r := range callsFrom(t, client, url, 4) {
			if !r.OK {
				return fmt.Errorf("call %d: %+v", r.N, r)
			}
		}
		return nil
	})

	const n = 20
	res := callsFrom(t, client, url, n)
	if len(res) != n {
		t.Fatalf("%d calls, want %d", len(res), n)
	}
	wantID := "URI=spiffe://cluster.local/ns/" + ns + "/sa/client"
	byPod := map[string]int{}
	for _, r := range res {
		if !r.OK || r.Report == nil {
			t.Errorf("call %d failed: %+v", r.N, r)
			continue
		}
		byPod[r.Report.Pod]++
		switch r.Report.Pod {
		case meshed.obj.Name:
			if !strings.Contains(r.Report.XFCC, wantID) {
				t.Errorf("call %d to the meshed pod: x-forwarded-client-cert %q, want %s", r.N, r.Report.XFCC, wantID)
			}
		case plain.obj.Name:
			if r.Report.XFCC != "" {
				t.Errorf("call %d to the plaintext pod carried x-forwarded-client-cert %q", r.N, r.Report.XFCC)
			}
		}
	}
	if byPod[meshed.obj.Name] == 0 || byPod[plain.obj.Name] == 0 {
		t.Errorf("answers by pod %v, want both pods", byPod)
	}
	if got := clusterHandshakes(client.stats(t), outboundStatName(ns, svc.Name)); got < 1 {
		t.Errorf("the client's cluster completed %v TLS handshakes, want the meshed pod's", got)
	}
	t.Logf("%d calls: answers by pod %v", n, byPod)
}

const tlsAppPort = 8443

// TestAppOwnTLS: an application that speaks TLS itself (HTTPS on a port
// named https, so TCP to the mesh) under PERMISSIVE. A client outside the
// mesh reaches the app's own TLS untouched: the app's certificate answers
// and the server's sidecar terminates no TLS. A meshed client's calls go
// inside the mesh's mTLS (the sidecar terminates it, matched by the mesh's
// ALPN) and reach the app's TLS inside.
func TestAppOwnTLS(t *testing.T) {
	needRoot(t)
	ns := meshNamespace(t)
	peerAuth(t, ns, "default", meshv1alpha1.PeerMTLSPermissive, nil)
	svc := createService(t, ns, "secure", "secure", corev1.ServicePort{Name: "https", Port: 443, TargetPort: intstr.FromInt32(tlsAppPort)})
	server := startPod(t, podSpec{
		name: "secure", namespace: ns, app: &AppConfig{Mode: HTTPServer, Port: tlsAppPort, ServerOptions: ServerOptions{TLS: true}},
		ports: []corev1.ContainerPort{{Name: "https", ContainerPort: tlsAppPort}},
	})
	setEndpoints(t, svc, server)
	meshed := startPod(t, podSpec{name: "client", namespace: ns})
	outside := startPod(t, podSpec{name: "outside", namespace: ns, noInject: true})
	const n = 5
	appCert := AppCertName(server.obj.Name)

	direct := "https://" + server.netns.IP.String() + ":" + strconv.Itoa(tlsAppPort) + "/outside"
	before := inboundHandshakes(t, server)
	res := calls(t, outside.netns, AppConfig{Mode: HTTPClient, URL: direct, Count: n, NewConnections: true, Timeout: 3 * time.Second})
	checkAppTLS(t, "calls from outside the mesh", res, n, appCert)
	if got := inboundHandshakes(t, server) - before; got != 0 {
		t.Errorf("the server's sidecar terminated %v TLS handshakes of a client outside the mesh, want none", got)
	}

	url := "https://" + svc.Name + "." + ns + ":443/meshed"
	waitCall(t, meshed, url)
	before = inboundHandshakes(t, server)
	res = calls(t, meshed.netns, AppConfig{Mode: HTTPClient, URL: url, Count: n, NewConnections: true, Timeout: 3 * time.Second})
	checkAppTLS(t, "calls from the mesh", res, n, appCert)
	if got := inboundHandshakes(t, server) - before; got < 1 {
		t.Errorf("the server's sidecar terminated %v mTLS handshakes of the meshed client, want ≥ 1", got)
	}
}

// checkAppTLS fails t unless every call succeeded against the app's own
// certificate.
func checkAppTLS(t *testing.T, what string, res []CallResult, n int, cert string) {
	t.Helper()
	allOK(t, what, res, n, "secure")
	for _, r := range res {
		if r.ServerCert != cert {
			t.Errorf("%s: call %d got the certificate of %q, want the app's %q", what, r.N, r.ServerCert, cert)
		}
	}
}
