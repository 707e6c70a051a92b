package netpod

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
)

// The apps of the pods are the running binary started again inside a pod's
// namespace (`ip netns exec`) with AppEnv set to an AppConfig in JSON: its
// main (a test binary's TestMain) calls RunApp before anything else. A
// process, not a goroutine, because a thread's network namespace is not a
// goroutine's, and because a client must resolve names through the pod's
// /etc/hosts.
const AppEnv = "CAPSTAN_DATAPLANE_APP"

// App modes.
const (
	// HTTPServer answers every request with a Report in JSON.
	HTTPServer = "http-server"
	// GRPCServer serves grpc.testing.TestService: UnaryCall answers with
	// the pod's name as hostname and puts the x-forwarded-client-cert it
	// received in the response header XFCCHeader.
	GRPCServer = "grpc-server"
	// HTTPClient makes Count GET requests to URL (until SIGTERM when 0),
	// Interval apart, and prints one CallResult per line.
	HTTPClient = "http-client"
	// GRPCClient makes Count UnaryCalls to Target and prints one
	// CallResult per line.
	GRPCClient = "grpc-client"
)

// XFCCHeader is the response header in which the gRPC server returns the
// x-forwarded-client-cert it received.
const XFCCHeader = "x-seen-xfcc"

// AppConfig configures one app process.
type AppConfig struct {
	Mode string `json:"mode"`
	// Name is the pod's name, reported by servers.
	Name string `json:"name,omitempty"`
	// Port servers listen on (all addresses).
	Port int `json:"port,omitempty"`
	// URL (HTTP) or Target (gRPC, host:port) clients call.
	URL    string `json:"url,omitempty"`
	Target string `json:"target,omitempty"`
	Count  int    `json:"count,omitempty"`
	// Interval between calls; Timeout of each call (default 5s).
	Interval time.Duration `json:"interval,omitempty"`
	Timeout  time.Duration `json:"timeout,omitempty"`
	// NewConnections makes each HTTP call on a new connection.
	NewConnections bool `json:"newConnections,omitempty"`
	// Method of HTTP calls; GET by default.
	Method string `json:"method,omitempty"`
	// Headers are added to every HTTP call (Host sets the authority).
	Headers map[string]string `json:"headers,omitempty"`
	// Concurrency is how many requests an HTTPLoad client sends at once.
	Concurrency int `json:"concurrency,omitempty"`
	// Hold makes the HTTP server hold requests until Hold are in flight
	// at once (once; later requests are answered at once).
	Hold int `json:"hold,omitempty"`
	// GRPCStatus makes a GRPCClient's calls ask the server for this status
	// code (grpc.testing's response_status).
	GRPCStatus int `json:"grpcStatus,omitempty"`
	// Server variants and the TCP modes: see app_proto.go.
	ServerOptions
	// Rate configures an HTTPRate client (app_rate.go).
	Rate *RateOptions `json:"rate,omitempty"`
}

// Report is what the HTTP server answers: who it is and what it got.
type Report struct {
	Pod        string              `json:"pod"`
	Method     string              `json:"method"`
	Host       string              `json:"host"`
	Path       string              `json:"path"`
	RemoteAddr string              `json:"remoteAddr"`
	Headers    map[string][]string `json:"headers"`
	XFCC       string              `json:"xfcc"`
	// InFlight is how many requests the server had in flight when this
	// one came in, itself included.
	InFlight int `json:"inFlight"`
	// Proto is the request's protocol as the app got it (HTTP/1.1, HTTP/2.0).
	Proto string `json:"proto,omitempty"`
	// Stream is the number of the stream an H2RefuseServer answered,
	// counted over all its connections, refused streams included.
	Stream int `json:"stream,omitempty"`
}

// CallResult is one call a client made.
type CallResult struct {
	N      int     `json:"n"`
	OK     bool    `json:"ok"`
	Status int     `json:"status,omitempty"`
	Report *Report `json:"report,omitempty"`
	// Body is a non-JSON answer (an Envoy error page); Error a failed call.
	Body  string `json:"body,omitempty"`
	Error string `json:"error,omitempty"`
	// Pod and XFCC are the gRPC server's answer.
	Pod  string `json:"pod,omitempty"`
	XFCC string `json:"xfcc,omitempty"`
	// GRPCCode is the status code of a failed gRPC call.
	GRPCCode int `json:"grpcCode,omitempty"`
	// ServerCert is the common name of the certificate an HTTPS server
	// presented.
	ServerCert string `json:"serverCert,omitempty"`
	// RespHeaders are the HTTP answer's headers; Location its redirect.
	RespHeaders http.Header `json:"respHeaders,omitempty"`
}

// AppCommand is the command that runs cfg inside the namespace.
func AppCommand(ctx context.Context, ns *Netns, cfg AppConfig) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("locating the running binary: %w", err)
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding the app config: %w", err)
	}
	cmd := ns.Command(ctx, self, "-test.run=^$")
	cmd.Env = append(os.Environ(), AppEnv+"="+string(raw))
	return cmd, nil
}

// ParseCalls reads a client's output.
func ParseCalls(out string) ([]CallResult, error) {
	var calls []CallResult
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var c CallResult
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			return nil, fmt.Errorf("parsing %q: %w", line, err)
		}
		calls = append(calls, c)
	}
	return calls, nil
}

// RunApp runs the app AppEnv describes and returns the exit code.
func RunApp(raw string) int {
	var cfg AppConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "app config:", err)
		return 2
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := runMode(ctx, cfg); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// runMode runs the app of cfg.Mode until it ends or ctx is done.
func runMode(ctx context.Context, cfg AppConfig) error {
	switch cfg.Mode {
	case HTTPServer:
		return serveHTTP(ctx, cfg)
	case GRPCServer:
		return serveGRPC(ctx, cfg)
	case HTTPClient:
		return callHTTP(ctx, cfg)
	case GRPCClient:
		return callGRPC(ctx, cfg)
	case GRPCStream:
		return streamGRPC(ctx, cfg)
	case HTTPLoad:
		return loadHTTP(ctx, cfg)
	case HTTPStream:
		return streamHTTP(ctx, cfg)
	case HTTPRate:
		return rateHTTP(ctx, cfg)
	case TCPServer:
		return serveTCP(ctx, cfg)
	case H2RefuseServer:
		return serveH2Refuse(ctx, cfg)
	case TCPClient:
		return callTCP(ctx, cfg, nil)
	case WSClient:
		return callTCP(ctx, cfg, upgradeHandshake(cfg.URL))
	default:
		return fmt.Errorf("unknown app mode %q", cfg.Mode)
	}
}

func serveHTTP(ctx context.Context, cfg AppConfig) error {
	lis, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.Port))
	if err != nil {
		return err
	}
	h := newHolder(cfg.Hold)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: cfg.wrap(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		defer h.leave()
		rep := Report{
			Pod: cfg.Name, Method: r.Method, Host: r.Host, Path: r.URL.Path, RemoteAddr: r.RemoteAddr,
			Headers: r.Header, XFCC: r.Header.Get("X-Forwarded-Client-Cert"), InFlight: h.enter(r.Context(), r.URL.Path),
			Proto: r.Proto,
		}
		w.Header().Set(AppPodHeader, cfg.Name)
		if answerFail(w, r, rep) || answerSpecial(w, r, rep) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(rep)
	})}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if lis, err = cfg.configure(srv, lis, cfg.Name); err != nil {
		return err
	}
	fmt.Println("serving HTTP on", lis.Addr())
	if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type grpcServer struct {
	testgrpc.UnimplementedTestServiceServer
	name string
}

func (s *grpcServer) UnaryCall(ctx context.Context, in *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	// An asked-for status goes alone (a trailers-only answer, which is
	// what a sidecar's gRPC retry conditions read).
	if err := grpcStatusOf(in); err != nil {
		return nil, err
	}
	md, _ := metadata.FromIncomingContext(ctx)
	_ = grpc.SetHeader(ctx, metadata.Pairs(XFCCHeader, strings.Join(md.Get("x-forwarded-client-cert"), ",")))
	return &testgrpc.SimpleResponse{Hostname: s.name, ServerId: s.name}, nil
}

func serveGRPC(ctx context.Context, cfg AppConfig) error {
	lis, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.Port))
	if err != nil {
		return err
	}
	srv := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(srv, &grpcServer{name: cfg.Name})
	go func() {
		<-ctx.Done()
		srv.Stop()
	}()
	fmt.Println("serving gRPC on", lis.Addr())
	return srv.Serve(lis)
}

// loop calls call Count times (forever when 0), Interval apart, printing
// each result, until ctx ends; a call that fails because ctx ended is not
// printed.
func loop(ctx context.Context, cfg AppConfig, call func(n int) CallResult) error {
	out := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(out)
	for n := 1; cfg.Count == 0 || n <= cfg.Count; n++ {
		if ctx.Err() != nil {
			break
		}
		r := call(n)
		if !r.OK && ctx.Err() != nil {
			// The stop cut this call short: it is not a failure of the
			// path under test, and the caller asked for no more calls.
			break
		}
		r.N = n
		if err := enc.Encode(r); err != nil {
			return err
		}
		if err := out.Flush(); err != nil {
			return err
		}
		if cfg.Interval > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(cfg.Interval):
			}
		}
	}
	return nil
}

func callHTTP(ctx context.Context, cfg AppConfig) error {
	tr := &http.Transport{DisableKeepAlives: cfg.NewConnections, Proxy: nil, TLSClientConfig: appClientTLS()}
	c := &http.Client{Transport: tr, Timeout: cfg.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	return loop(ctx, cfg, func(int) CallResult {
		req, err := newRequest(ctx, cfg)
		if err != nil {
			return CallResult{Error: err.Error()}
		}
		resp, err := c.Do(req)
		if err != nil {
			return CallResult{Error: err.Error()}
		}
		defer func() { _ = resp.Body.Close() }()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return CallResult{Status: resp.StatusCode, Error: err.Error()}
		}
		r := CallResult{Status: resp.StatusCode, OK: resp.StatusCode == http.StatusOK, ServerCert: serverCert(resp), RespHeaders: resp.Header}
		var rep Report
		if json.Unmarshal(body, &rep) == nil && rep.Pod != "" {
			r.Report = &rep
		} else {
			r.Body = string(body)
		}
		return r
	})
}

func callGRPC(ctx context.Context, cfg AppConfig) error {
	conn, err := grpc.NewClient(cfg.Target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	c := testgrpc.NewTestServiceClient(conn)
	return loop(ctx, cfg, func(int) CallResult {
		callCtx, cancel := context.WithTimeout(grpcContext(ctx, cfg), cfg.Timeout)
		defer cancel()
		var header metadata.MD
		req := &testgrpc.SimpleRequest{}
		if cfg.GRPCStatus != 0 {
			req.ResponseStatus = &testgrpc.EchoStatus{Code: int32(cfg.GRPCStatus), Message: "asked for"} //nolint:gosec // a small status code from the test
		}
		resp, err := c.UnaryCall(callCtx, req, grpc.Header(&header))
		if err != nil {
			return grpcFailure(err)
		}
		return CallResult{OK: true, Pod: resp.GetHostname(), XFCC: strings.Join(header.Get(XFCCHeader), ",")}
	})
}
