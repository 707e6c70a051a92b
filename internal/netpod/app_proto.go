package netpod

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// App modes for the protocol scenarios (protocols_test.go).
const (
	// TCPServer answers each line it reads with "<pod> <line>".
	TCPServer = "tcp-server"
	// TCPClient sends Count lines "hello <n>" to Target (on one
	// connection, or one each with NewConnections) and prints one
	// CallResult per line, Body the answer.
	TCPClient = "tcp-client"
	// WSClient is TCPClient over a WebSocket upgrade: on each connection
	// to Target it first asks for an upgrade of URL's path and waits for
	// 101 Switching Protocols. (The lines are not framed: the sidecars pass
	// an upgraded connection's bytes as they are.)
	WSClient = "ws-client"
	// WebSocketPath on the HTTP server answers an upgrade with 101 and
	// then serves the line protocol of TCPServer on the connection.
	WebSocketPath = "/ws"
)

// ServerOptions vary the HTTP server.
type ServerOptions struct {
	// TLS serves HTTPS with a self-signed certificate whose common name is
	// AppCertName(pod): an application that speaks TLS itself.
	TLS bool `json:"tls,omitempty"`
	// H2COnly serves HTTP/2 without TLS (prior knowledge) and nothing else.
	H2COnly bool `json:"h2cOnly,omitempty"`
	// IdleClose makes the server drop a keep-alive connection that was
	// idle for IdleClose when the next request arrives on it: it closes the
	// connection without answering, as a server whose keep-alive timeout
	// expired just as the request was sent.
	IdleClose time.Duration `json:"idleClose,omitempty"`
	// FailStatus, when set, answers every request with that status (and
	// the report): a failing endpoint.
	FailStatus int `json:"failStatus,omitempty"`
}

// AppCertName is the common name of the certificate of a TLS app.
func AppCertName(pod string) string { return "app-" + pod }

// wrap adds the FailStatus or IdleClose behaviour to the server's handler.
func (o ServerOptions) wrap(h http.HandlerFunc) http.Handler {
	if o.FailStatus != 0 {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.URL.Path = StatusPathPrefix + strconv.Itoa(o.FailStatus)
			h(w, r)
		})
	}
	if o.IdleClose == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, _ := r.Context().Value(connStateKey{}).(*connIdle)
		if st != nil && st.expired(o.IdleClose) {
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		h(w, r)
		if st != nil {
			st.served()
		}
	})
}

type connStateKey struct{}

// connIdle is when a connection last finished a request.
type connIdle struct {
	mu   sync.Mutex
	last time.Time
}

func (c *connIdle) served() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = time.Now()
}

// expired: the connection served a request and was idle for at least d since.
func (c *connIdle) expired(d time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.last.IsZero() && time.Since(c.last) >= d
}

// configure applies the options to srv and lis of the app of pod.
func (o ServerOptions) configure(srv *http.Server, lis net.Listener, pod string) (net.Listener, error) {
	if o.IdleClose > 0 {
		srv.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, connStateKey{}, &connIdle{})
		}
	}
	if o.H2COnly {
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetUnencryptedHTTP2(true)
	}
	if !o.TLS {
		return lis, nil
	}
	cert, err := selfSigned(AppCertName(pod))
	if err != nil {
		return nil, err
	}
	return tls.NewListener(lis, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}), nil
}

// selfSigned is a fresh self-signed ECDSA certificate for name.
func selfSigned(name string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// appClientTLS is the HTTP client's TLS: any server certificate (the
// scenarios check which one came, ServerCert).
func appClientTLS() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12} //nolint:gosec // the test checks the certificate's name itself
}

func serverCert(resp *http.Response) string {
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		return ""
	}
	return resp.TLS.PeerCertificates[0].Subject.CommonName
}

func serveTCP(ctx context.Context, cfg AppConfig) error {
	return serveConns(ctx, cfg.Port, "lines", func(conn net.Conn) { answerLines(conn, cfg.Name) })
}

// serveConns accepts TCP connections on port until ctx is done, handling
// each on its own goroutine; what names the protocol in the line printed
// once it listens.
func serveConns(ctx context.Context, port int, what string, handle func(net.Conn)) error {
	lis, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		_ = lis.Close()
	}()
	fmt.Println("serving", what, "on", lis.Addr())
	for {
		conn, err := lis.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		go handle(conn)
	}
}

func answerLines(conn net.Conn, name string) {
	defer func() { _ = conn.Close() }()
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		if _, err := fmt.Fprintf(conn, "%s %s\n", name, sc.Text()); err != nil {
			return
		}
	}
}

// upgradeToLines answers a WebSocket upgrade with 101 and serves lines.
func upgradeToLines(w http.ResponseWriter, r *http.Request, name string) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		http.Error(w, "upgrade required", http.StatusUpgradeRequired)
		return
	}
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	if rw.Flush() != nil {
		_ = conn.Close()
		return
	}
	answerLines(conn, name)
}

// upgradeHandshake asks for a WebSocket upgrade of rawURL's path on a
// new connection and reads the 101 answer.
func upgradeHandshake(rawURL string) func(net.Conn, *bufio.Reader) error {
	return func(conn net.Conn, rd *bufio.Reader) error {
		req, err := http.NewRequest(http.MethodGet, rawURL, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		req.Header.Set("Sec-WebSocket-Version", "13")
		if err := req.Write(conn); err != nil {
			return err
		}
		resp, err := http.ReadResponse(rd, req)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			return fmt.Errorf("upgrade answered %s", resp.Status)
		}
		return nil
	}
}

func callTCP(ctx context.Context, cfg AppConfig, handshake func(net.Conn, *bufio.Reader) error) error {
	var conn net.Conn
	defer func() {
		if conn != nil {
			_ = conn.Close()
		}
	}()
	var rd *bufio.Reader
	return loop(ctx, cfg, func(n int) CallResult {
		if conn == nil || cfg.NewConnections {
			if conn != nil {
				_ = conn.Close()
			}
			var err error
			if conn, err = (&net.Dialer{Timeout: cfg.Timeout}).DialContext(ctx, "tcp", cfg.Target); err != nil {
				conn = nil
				return CallResult{Error: err.Error()}
			}
			rd = bufio.NewReader(conn)
			if handshake != nil {
				if err := handshake(conn, rd); err != nil {
					_ = conn.Close()
					conn = nil
					return CallResult{Error: err.Error()}
				}
			}
		}
		_ = conn.SetDeadline(time.Now().Add(cfg.Timeout))
		line, err := lineCall(conn, rd, n)
		if err != nil {
			_ = conn.Close()
			conn = nil
			return CallResult{Body: line, Error: err.Error()}
		}
		return CallResult{OK: true, Body: line}
	})
}

// lineCall sends "hello <n>" and reads the answer line.
func lineCall(conn net.Conn, rd *bufio.Reader, n int) (string, error) {
	if _, err := fmt.Fprintf(conn, "hello %d\n", n); err != nil {
		return "", err
	}
	line, err := rd.ReadString('\n')
	line = strings.TrimSuffix(line, "\n")
	if err == nil && !strings.HasSuffix(line, " hello "+strconv.Itoa(n)) {
		err = errors.New("unexpected answer")
	}
	return line, err
}
