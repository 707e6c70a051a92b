// Command capstan-init installs the traffic capture rules of a Capstan
// sidecar in the pod's network namespace. The injector runs it as the pod's
// first init container, as root with NET_ADMIN and NET_RAW:
//
//	capstan-init --proxy-uid=1337 --exclude-inbound-ports=15000,15021,15090 --pod-ips=$(POD_IPS)
//
// It renders iptables-restore input (and ip6tables-restore input for IPv6
// pods), prints it, and pipes it to the restore programs, which replace the
// namespace's nat table. --dry-run only prints. See docs/injection.md.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/capstanmesh/capstan/cmd/capstan-init/internal/rules"
)

// applyTimeout bounds each restore program's run.
const applyTimeout = 30 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: it returns the exit code, 0 on success,
// 2 for bad flags and 1 when a restore program fails.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, err := rules.ParseFlags(args, stderr)
	if errors.Is(err, rules.ErrHelp) {
		return 0
	}
	if err != nil {
		return fail(stderr, 2, err)
	}
	steps, err := rules.Plan(opts)
	if err != nil {
		return fail(stderr, 2, err)
	}
	for _, s := range steps {
		// The rules are printed first so that kubectl logs shows what was applied.
		_, _ = io.WriteString(stdout, s.Input)
		if opts.DryRun {
			continue
		}
		if err := apply(ctx, s); err != nil {
			return fail(stderr, 1, err)
		}
	}
	return 0
}

// fail reports err on stderr and returns code.
func fail(stderr io.Writer, code int, err error) int {
	_, _ = fmt.Fprintf(stderr, "capstan-init: %v\n", err)
	return code
}

// apply pipes a step's input to its program.
func apply(ctx context.Context, s rules.Step) error {
	ctx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.Program)
	cmd.Stdin = strings.NewReader(s.Input)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(out.String()); msg != "" {
			return fmt.Errorf("%s: %w: %s", s.Program, err, msg)
		}
		return fmt.Errorf("%s: %w", s.Program, err)
	}
	return nil
}
