package netpod

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/capstanmesh/capstan/internal/loadgen"
)

// App mode and path of the hop benchmark (test/dataplane, `make bench-hop`).
const (
	// HTTPRate POSTs Rate.BodySize bytes to URL at Rate.Rate requests per
	// second over HTTP/1.1 keep-alive connections, open loop
	// (internal/loadgen), and prints one RateResult. A request succeeds
	// when it is answered 200 with Rate.BodySize bytes.
	HTTPRate = "http-rate"
	// BytesPathPrefix + a size answers that many bytes (at most 1 MiB).
	BytesPathPrefix = "/bytes/"
)

// maxBytesAnswer bounds what BytesPathPrefix answers.
const maxBytesAnswer = 1 << 20

// RateOptions configure an HTTPRate client.
type RateOptions struct {
	// Rate is requests per second; Warmup is sent first and not
	// measured, then Duration is measured.
	Rate     float64       `json:"rate"`
	Warmup   time.Duration `json:"warmup,omitempty"`
	Duration time.Duration `json:"duration"`
	// BodySize is the size of each request's body and of the expected
	// answer (URL should be BytesPathPrefix + BodySize).
	BodySize int `json:"bodySize"`
	// Connections bounds the requests in flight, one keep-alive
	// connection each (16 when 0).
	Connections int `json:"connections,omitempty"`
}

// RateResult is what an HTTPRate client measured.
type RateResult struct {
	loadgen.Result
	// Dials counts the connections the client opened (keep-alive: at most
	// Connections, whatever the number of requests).
	Dials int64 `json:"dials"`
}

func rateHTTP(ctx context.Context, cfg AppConfig) error {
	if cfg.Rate == nil {
		return fmt.Errorf("%s needs rate options", HTTPRate)
	}
	o := *cfg.Rate
	if o.Connections == 0 {
		o.Connections = 16
	}
	var dials atomic.Int64
	dialer := &net.Dialer{Timeout: cfg.Timeout}
	tr := &http.Transport{
		Proxy: nil, MaxConnsPerHost: o.Connections, MaxIdleConnsPerHost: o.Connections, DisableCompression: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return dialer.DialContext(ctx, network, addr)
		},
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: cfg.Timeout}
	body := bytes.Repeat([]byte("x"), o.BodySize)
	res, err := loadgen.Run(ctx, loadgen.Config{Rate: o.Rate, Warmup: o.Warmup, Duration: o.Duration, Workers: o.Connections},
		func(ctx context.Context) error { return postBytes(ctx, c, cfg.URL, body) })
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(RateResult{Result: res, Dials: dials.Load()})
}

// postBytes POSTs body to url and expects 200 with as many bytes back.
func postBytes(ctx context.Context, c *http.Client, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	n, err := io.Copy(io.Discard, resp.Body)
	switch {
	case err != nil:
		return err
	case resp.StatusCode != http.StatusOK || n != int64(len(body)):
		return fmt.Errorf("answer %d with %d bytes, want 200 with %d", resp.StatusCode, n, len(body))
	}
	return nil
}

// answerBytes serves BytesPathPrefix.
func answerBytes(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, BytesPathPrefix))
	if err != nil || n < 0 || n > maxBytesAnswer {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(n))
	_, _ = w.Write(bytes.Repeat([]byte("y"), n))
}
