// Package sidecars simulates a fleet of sidecars in its own process: each a
// real gRPC connection with one ADS stream (delta or state of the world)
// that subscribes and ACKs like Envoy. The control plane's harness drives
// it over JSON lines on stdin/stdout (Command in, Reply out), so that the
// control plane's memory and CPU are measured apart from the clients'.
package sidecars

import "time"

// Operations of a Command.
const (
	// OpConnect opens a stream per node and answers once every proxy holds a
	// complete config (or at the deadline).
	OpConnect = "connect"
	// OpExpect arms an expectation and answers at once with the number of
	// affected proxies; the harness then makes the change and sends OpAwait.
	OpExpect = "expect"
	// OpAwait answers once every affected proxy met the armed expectation.
	OpAwait = "await"
	// OpVerify checks that every proxy holds the expected config.
	OpVerify = "verify"
	// OpQuit closes every stream and ends the process.
	OpQuit = "quit"
)

// Command is one request from the harness.
type Command struct {
	Op string `json:"op"`
	// Connect: the server's address, its CA (PEM; empty: plaintext) and
	// TLS server name, the node IDs, and whether to use state-of-the-world
	// streams instead of delta.
	Addr       string   `json:"addr,omitempty"`
	CAPEM      []byte   `json:"caPEM,omitempty"`
	ServerName string   `json:"serverName,omitempty"`
	Nodes      []string `json:"nodes,omitempty"`
	SotW       bool     `json:"sotw,omitempty"`
	// Deadline bounds the wait of OpConnect and OpAwait.
	Deadline time.Duration `json:"deadline,omitempty"`
	// Expect is OpExpect's expectation.
	Expect Expectation `json:"expect,omitzero"`
	// T0 (unix nanoseconds) is when the harness made the change, for OpAwait.
	T0 int64 `json:"t0,omitempty"`
	// Verify is what OpVerify checks.
	Verify Verification `json:"verify,omitzero"`
}

// Expectation says when a proxy holds a change.
type Expectation struct {
	// NewIP: the proxy holds an endpoint assignment with this address.
	// OldIP narrows the affected proxies to those that hold an assignment
	// with it when the expectation is armed (empty: every proxy).
	NewIP string `json:"newIP,omitempty"`
	OldIP string `json:"oldIP,omitempty"`
	// Split: the proxy holds a route with these weights, e.g. "73,27".
	Split string `json:"split,omitempty"`
}

// Verification is the config every proxy must hold.
type Verification struct {
	// Services are the endpoint addresses of each service: a proxy must hold
	// an endpoint assignment with exactly these addresses for each.
	Services [][]string `json:"services,omitempty"`
	// Splits are weighted splits ("90,10") a proxy must hold in its routes.
	Splits []string `json:"splits,omitempty"`
}

// Reply answers one Command.
type Reply struct {
	Op  string `json:"op"`
	Err string `json:"err,omitempty"`
	// Result of OpConnect and OpAwait; Affected of OpExpect.
	Result   *Result `json:"result,omitempty"`
	Affected int     `json:"affected,omitempty"`
	// Failures of OpVerify (the first few), empty when every proxy holds
	// the expected config.
	Failures []string `json:"failures,omitempty"`
}

// Result is the outcome of a wait.
type Result struct {
	// Proxies is the number of proxies waited for, Done how many got there.
	Proxies int `json:"proxies"`
	Done    int `json:"done"`
	// Latencies (seconds, sorted) from the start (connect, or the change's
	// T0) to each proxy's ACK that completed it.
	Latencies []float64 `json:"latencies"`
	// Bytes are the gRPC payload bytes all proxies received from the start
	// until traffic settled.
	Bytes int64 `json:"bytes"`
	// Resent counts the resources received in the same window that the
	// receiving proxy already held with identical content.
	Resent int64 `json:"resent"`
	// StreamErrors are the first few stream failures.
	StreamErrors []string `json:"streamErrors,omitempty"`
}
