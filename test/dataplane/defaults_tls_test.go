package dataplane

import (
	"crypto/tls"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// TestSidecarTLS: under STRICT, the TLS between two sidecars is TLS 1.3
// with the post-quantum hybrid group X25519MLKEM768, as the server
// sidecar's inbound listener and the client sidecar's cluster count it
// (ssl.versions.TLSv1.3, ssl.curves.X25519MLKEM768); a client offering
// only TLS 1.2 is refused on a STRICT port with a protocol-version alert;
// a Go client offering X25519MLKEM768 negotiates it with the sidecar.
func TestSidecarTLS(t *testing.T) {
	needRoot(t)
	ns := meshNamespace(t)
	peerAuth(t, ns, "default", meshv1alpha1.PeerMTLSStrict, nil)
	server, svc := echoServer(t, ns, podSpec{})
	client := startPod(t, podSpec{name: "client", namespace: ns})
	waitCall(t, client, serviceURL(svc, "/tls"))
	res := calls(t, client.netns, AppConfig{Mode: HTTPClient, URL: serviceURL(svc, "/tls"), Count: 3, NewConnections: true})
	allOK(t, "calls", res, 3, "server")

	const listener = "listener.0.0.0.0_15006.ssl."
	for _, name := range []string{"versions.TLSv1.3", "curves.X25519MLKEM768"} {
		if got := sslStat(t, server, listener+name); got < 1 {
			t.Errorf("server sidecar %s%s = %v, want ≥ 1; its ssl stats:\n%s", listener, name, got, server.admin(t, "/stats?filter=ssl").Body)
		}
	}
	if got := sslStat(t, server, listener+"versions.TLSv1.2"); got > 0 {
		t.Errorf("server sidecar %sversions.TLSv1.2 = %v, want none", listener, got)
	}
	cluster := "cluster." + outboundStatName(ns, svc.Name) + ".ssl."
	for _, name := range []string{"versions.TLSv1.3", "curves.X25519MLKEM768"} {
		if got := sslStat(t, client, cluster+name); got < 1 {
			t.Errorf("client sidecar %s%s = %v, want ≥ 1; its ssl stats:\n%s", cluster, name, got, client.admin(t, "/stats?filter=ssl").Body)
		}
	}

	addr := net.JoinHostPort(server.netns.IP.String(), strconv.Itoa(appPort))
	if _, err := handshake(addr, tls.VersionTLS12); !isProtocolVersionAlert(err) {
		t.Errorf("a TLS 1.2 client on a STRICT port: %v, want a protocol version alert", err)
	}
	cs, err := handshake(addr, tls.VersionTLS13)
	if err != nil {
		t.Fatalf("TLS 1.3 handshake with the server sidecar: %v", err)
	}
	if cs.Version != tls.VersionTLS13 || cs.CurveID != tls.X25519MLKEM768 {
		t.Errorf("the sidecar negotiated %s with %s, want TLS 1.3 with X25519MLKEM768", tls.VersionName(cs.Version), cs.CurveID)
	}
	t.Logf("sidecar handshake: %s, %s, %s", tls.VersionName(cs.Version), cs.CurveID, tls.CipherSuiteName(cs.CipherSuite))
}

// handshake does a TLS handshake (without a client certificate) up to
// maxVersion with addr, and returns its state once the server's
// certificate arrived.
func handshake(addr string, maxVersion uint16) (tls.ConnectionState, error) {
	var state tls.ConnectionState
	cfg := &tls.Config{
		MaxVersion:         maxVersion,
		CurvePreferences:   []tls.CurveID{tls.X25519MLKEM768, tls.X25519},
		InsecureSkipVerify: true, //nolint:gosec // only the negotiated parameters matter here
		VerifyConnection: func(cs tls.ConnectionState) error {
			state = cs
			return nil
		},
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", addr, cfg)
	if err == nil {
		_ = conn.Close()
		return state, nil
	}
	if state.Version != 0 {
		// STRICT then ends the connection for want of a client certificate.
		return state, nil
	}
	return state, err
}

// isProtocolVersionAlert: the server answered with a protocol_version
// alert (crypto/tls exports no type for an alert received).
func isProtocolVersionAlert(err error) bool {
	return err != nil && strings.Contains(err.Error(), "remote error: tls: protocol version not supported")
}
