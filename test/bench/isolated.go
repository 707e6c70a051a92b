package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// EnvRun holds a JSON Config: the harness's binary (see TestMain) then runs
// that one configuration as the control-plane process (RunIsolatedMain) and
// prints its RunResult, so that each run starts from a fresh heap.
const EnvRun = "CAPSTAN_BENCH_RUN"

// resultPrefix marks the result line on the control-plane process's stdout.
const resultPrefix = "BENCH-RESULT "

// IsolatedConfig is a Config plus the control plane's memory budget.
type IsolatedConfig struct {
	Config
	// MaxRSS ends the run, recorded as not finished, once the control
	// plane's RSS exceeds it (bytes; 0: no budget).
	MaxRSS uint64 `json:"maxRSS"`
}

// RunIsolated runs cfg in a fresh control-plane process (the current binary
// with EnvRun set and args) and returns its result.
func RunIsolated(ctx context.Context, cfg IsolatedConfig, args ...string) (*RunResult, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding the run's config: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the harness binary: %w", err)
	}
	// Four waits (generation, initial, three changes) plus settling.
	ctx, cancel := context.WithTimeout(ctx, 6*cfg.Deadline+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(os.Environ(), EnvRun+"="+string(b))
	cmd.Stderr = os.Stderr
	var out bytes.Buffer
	cmd.Stdout = &out
	runErr := cmd.Run()
	for line := range strings.Lines(out.String()) {
		if rest, ok := strings.CutPrefix(line, resultPrefix); ok {
			var res RunResult
			if err := json.Unmarshal([]byte(rest), &res); err != nil {
				return nil, fmt.Errorf("decoding the run's result: %w", err)
			}
			return &res, nil
		}
	}
	if ctx.Err() != nil {
		return &RunResult{Proxies: cfg.Mesh.Proxies, Services: cfg.Mesh.Services, Endpoints: cfg.Mesh.Endpoints,
			DNF: fmt.Sprintf("killed after %s", 6*cfg.Deadline+time.Minute)}, nil
	}
	return nil, fmt.Errorf("the control-plane process gave no result: %w", runErr)
}

// RunIsolatedMain is the body of the control-plane process: it runs the
// JSON IsolatedConfig in config and prints the result to out.
func RunIsolatedMain(ctx context.Context, config string, out io.Writer) error {
	var cfg IsolatedConfig
	if err := json.Unmarshal([]byte(config), &cfg); err != nil {
		return fmt.Errorf("decoding %s: %w", EnvRun, err)
	}
	if cfg.MaxRSS > 0 {
		go guardRSS(cfg, out)
	}
	res, err := Run(ctx, cfg.Config)
	if err != nil {
		return err
	}
	return printResult(out, res)
}

func printResult(out io.Writer, res *RunResult) error {
	b, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("encoding the result: %w", err)
	}
	if _, err := fmt.Fprintf(out, "%s%s\n", resultPrefix, b); err != nil {
		return fmt.Errorf("writing the result: %w", err)
	}
	return nil
}

// guardRSS ends the process with a not-finished result once its RSS
// exceeds the budget; the sidecar process ends when its stdin closes.
func guardRSS(cfg IsolatedConfig, out io.Writer) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		rss, err := rssBytes()
		if err != nil || rss <= cfg.MaxRSS {
			continue
		}
		if stop := stopProfiling.Load(); stop != nil {
			(*stop)()
		}
		_ = writeHeapProfile(cfg.ProfileDir, "heap-at-budget.pprof")
		res := progress.Load()
		if res == nil {
			m := cfg.Mesh
			res = &RunResult{Proxies: m.Proxies, Services: m.Services, Endpoints: m.Endpoints}
		}
		res.DNF = fmt.Sprintf("control-plane RSS %d MiB, above the %d MiB budget, while %v", rss>>20, cfg.MaxRSS>>20, phase.Load())
		_ = printResult(out, res)
		os.Exit(0)
	}
}
