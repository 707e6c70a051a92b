package bench

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/capstanmesh/capstan/test/bench/sidecars"
)

// EnvSidecars, set to "1" in a process's environment, makes the harness's
// binary (the test binary, see TestMain) run the simulated sidecars
// (sidecars.Main) instead of its usual work.
const EnvSidecars = "CAPSTAN_BENCH_SIDECARS"

// sidecarProcess is the process of simulated sidecars, driven over its
// stdin and stdout.
type sidecarProcess struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	enc *json.Encoder
	dec *json.Decoder
}

// startSidecars re-executes the current binary with EnvSidecars set;
// args are its arguments (for a test binary, e.g. -test.run=^$).
func startSidecars(args ...string) (*sidecarProcess, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the harness binary: %w", err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), EnvSidecars+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("sidecar process stdin: %w", err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("sidecar process stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the sidecar process: %w", err)
	}
	return &sidecarProcess{cmd: cmd, in: in, enc: json.NewEncoder(in), dec: json.NewDecoder(bufio.NewReader(out))}, nil
}

// call sends one command and reads its reply.
func (p *sidecarProcess) call(cmd sidecars.Command) (sidecars.Reply, error) {
	if err := p.enc.Encode(cmd); err != nil {
		return sidecars.Reply{}, fmt.Errorf("sending %s to the sidecar process: %w", cmd.Op, err)
	}
	var reply sidecars.Reply
	if err := p.dec.Decode(&reply); err != nil {
		return sidecars.Reply{}, fmt.Errorf("reading the sidecar process's reply to %s: %w", cmd.Op, err)
	}
	if reply.Err != "" {
		return reply, fmt.Errorf("sidecar process, %s: %s", cmd.Op, reply.Err)
	}
	return reply, nil
}

// stop asks the process to quit and waits for it; it kills it if asking fails.
func (p *sidecarProcess) stop() error {
	_, callErr := p.call(sidecars.Command{Op: sidecars.OpQuit})
	_ = p.in.Close()
	if callErr != nil {
		_ = p.cmd.Process.Kill()
	}
	if err := p.cmd.Wait(); err != nil && callErr == nil {
		return fmt.Errorf("sidecar process: %w", err)
	}
	return errors.Join(callErr)
}
