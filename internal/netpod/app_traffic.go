package netpod

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// More app modes, for the traffic defaults (defaults_test.go).
const (
	// HTTPLoad sends Concurrency requests at once to URL and prints one
	// LoadResult.
	HTTPLoad = "http-load"
	// HTTPStream GETs URL, reads the answer until it ends and prints one
	// CallResult: Body is what it read, Error how the answer ended.
	HTTPStream = "http-stream"
)

// Paths the HTTP server answers specially.
const (
	// StreamPath answers with server-sent events headers and one event,
	// then sends nothing until the request goes away.
	StreamPath = "/stream"
	// StatusPathPrefix + a code answers the report with that status code.
	StatusPathPrefix = "/status/"
	// HoldPath is the path AppConfig.Hold holds.
	HoldPath = "/hold"
	// SleepPathPrefix + milliseconds answers after that long (or when the
	// request goes away).
	SleepPathPrefix = "/sleep/"
	// AppPodHeader is the response header in which the HTTP server names
	// its pod.
	AppPodHeader = "X-App-Pod"
)

// LoadResult is what an HTTPLoad client saw.
type LoadResult struct {
	// Statuses counts the answers by status code.
	Statuses map[int]int `json:"statuses"`
	// Overloaded counts answers with x-envoy-overloaded (Envoy's circuit
	// breaker refused the request).
	Overloaded int `json:"overloaded"`
	// MaxInFlight is the most requests the server apps reported in
	// flight at once (Report.InFlight).
	MaxInFlight int `json:"maxInFlight"`
	// Errors counts failed requests; FirstError is one of them.
	Errors     int    `json:"errors"`
	FirstError string `json:"firstError,omitempty"`
}

// holder is the HTTP server's one-shot barrier (AppConfig.Hold): requests
// wait until Hold are in flight at once, then all are answered, and later
// requests are answered at once. It also tracks the requests in flight.
type holder struct {
	hold     int
	inFlight atomic.Int64
	mu       sync.Mutex
	released chan struct{}
	done     bool
}

func newHolder(hold int) *holder { return &holder{hold: hold, released: make(chan struct{})} }

// enter counts a request in and, with a barrier, waits for it (or for the
// request to go away); it returns the requests in flight when it came in.
func (h *holder) enter(ctx context.Context, path string) int {
	n := int(h.inFlight.Add(1))
	if h.hold == 0 || path != HoldPath {
		return n
	}
	h.mu.Lock()
	if !h.done && n >= h.hold {
		h.done = true
		close(h.released)
	}
	h.mu.Unlock()
	select {
	case <-h.released:
	case <-ctx.Done():
	}
	return n
}

func (h *holder) leave() { h.inFlight.Add(-1) }

// answerSpecial serves StreamPath and StatusPathPrefix; false for other paths.
func answerSpecial(w http.ResponseWriter, r *http.Request, rep Report) bool {
	switch {
	case r.URL.Path == WebSocketPath:
		upgradeToLines(w, r, rep.Pod)
		return true
	case strings.HasPrefix(r.URL.Path, BytesPathPrefix):
		answerBytes(w, r)
		return true
	case r.URL.Path == StreamPath:
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "data: hello\n\n")
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		<-r.Context().Done()
		return true
	case strings.HasPrefix(r.URL.Path, SleepPathPrefix):
		ms, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, SleepPathPrefix))
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-r.Context().Done():
			return true
		}
		return false
	case strings.HasPrefix(r.URL.Path, StatusPathPrefix):
		code, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, StatusPathPrefix))
		if err != nil || code < 200 || code > 599 {
			code = http.StatusBadRequest
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(rep)
		return true
	}
	return false
}

// newRequest is the client's request: Method (GET by default) to URL.
func newRequest(ctx context.Context, cfg AppConfig) (*http.Request, error) {
	method := cfg.Method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if method != http.MethodGet && method != http.MethodHead {
		body = strings.NewReader("{}")
	}
	req, err := http.NewRequestWithContext(ctx, method, cfg.URL, body)
	if err != nil {
		return nil, err
	}
	for k, v := range cfg.Headers {
		if strings.EqualFold(k, "host") {
			req.Host = v
			continue
		}
		req.Header.Add(k, v)
	}
	return req, nil
}

func loadHTTP(ctx context.Context, cfg AppConfig) error {
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: cfg.Concurrency}
	c := &http.Client{Transport: tr, Timeout: cfg.Timeout}
	var mu sync.Mutex
	res := LoadResult{Statuses: map[int]int{}}
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Go(func() {
			status, overloaded, inFlight, err := loadCall(ctx, c, cfg)
			mu.Lock()
			defer mu.Unlock()
			res.add(status, overloaded, inFlight, err)
		})
	}
	wg.Wait()
	return json.NewEncoder(os.Stdout).Encode(res)
}

func (r *LoadResult) add(status int, overloaded bool, inFlight int, err error) {
	if err != nil {
		r.Errors++
		if r.FirstError == "" {
			r.FirstError = err.Error()
		}
		return
	}
	r.Statuses[status]++
	if overloaded {
		r.Overloaded++
	}
	r.MaxInFlight = max(r.MaxInFlight, inFlight)
}

func loadCall(ctx context.Context, c *http.Client, cfg AppConfig) (status int, overloaded bool, inFlight int, err error) {
	req, err := newRequest(ctx, cfg)
	if err != nil {
		return 0, false, 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, false, 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	var rep Report
	body, err := io.ReadAll(resp.Body)
	if err == nil && json.Unmarshal(body, &rep) == nil {
		inFlight = rep.InFlight
	}
	return resp.StatusCode, resp.Header.Get("x-envoy-overloaded") != "", inFlight, err
}

func streamHTTP(ctx context.Context, cfg AppConfig) error {
	c := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: cfg.Timeout}
	r := CallResult{N: 1}
	req, err := newRequest(ctx, cfg)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		r.Error = err.Error()
		return json.NewEncoder(os.Stdout).Encode(r)
	}
	defer func() { _ = resp.Body.Close() }()
	r.Status, r.OK = resp.StatusCode, resp.StatusCode == http.StatusOK
	var read strings.Builder
	_, err = io.Copy(&read, bufio.NewReader(resp.Body))
	r.Body = read.String()
	r.Error = fmt.Sprint(err)
	return json.NewEncoder(os.Stdout).Encode(r)
}
