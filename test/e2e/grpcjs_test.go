package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// nodeDir holds the @grpc/grpc-js-xds client; make installs its packages.
const nodeDir = "node"

// runGRPCJS runs the Node.js client against the mesh and returns its counts
// by answering backend version (failed calls under "error:<CODE>").
func runGRPCJS(t *testing.T, m *mesh, calls int, header string) map[string]int {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not on PATH: the @grpc/grpc-js-xds canary needs Node.js")
	}
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "@grpc", "grpc-js-xds")); err != nil {
		t.Fatalf("@grpc/grpc-js-xds is not installed in test/e2e/node: run make e2e-node-deps (%v)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{"client.js", strings.TrimPrefix(m.target(), "xds:///"), strconv.Itoa(calls)}
	if header != "" {
		args = append(args, header)
	}
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = nodeDir
	cmd.Env = append(os.Environ(), "GRPC_XDS_BOOTSTRAP_CONFIG="+m.bootstrap())
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("node client.js: %v\n%s", err, exit.Stderr)
		}
		t.Fatalf("node client.js: %v", err)
	}
	counts := map[string]int{}
	if err := json.Unmarshal(out, &counts); err != nil {
		t.Fatalf("node client.js printed %q: %v", out, err)
	}
	return counts
}

// The canary scenario with @grpc/grpc-js-xds as the client: the config is
// not tuned to grpc-go.
func TestCanarySplitGRPCJS(t *testing.T) {
	m := startCanary(t, 90, 10)

	const n = 2000
	got := runGRPCJS(t, m, n, "")
	if got["v1"]+got["v2"] != n {
		t.Fatalf("answers %v: want all %d calls answered by v1 or v2", got, n)
	}
	if x := chiSquare(got, n, 0.9); x > chiSquareP001 {
		t.Errorf("split %v over %d calls: chi-square %.2f > %.3f (p < 0.001) against 90/10", got, n, x, chiSquareP001)
	}
	t.Logf("grpc-js 90/10 over %d calls: %v", n, got)

	if got := runGRPCJS(t, m, 100, "x-canary=yes"); got["v2"] != 100 {
		t.Errorf("with x-canary: yes: %v, want all 100 on v2", got)
	}
}
