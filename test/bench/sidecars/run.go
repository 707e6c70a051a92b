package sidecars

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// pollEvery is how often waits look at the fleet's progress.
const pollEvery = 5 * time.Millisecond

// settleQuiet is how long the received byte count must stay unchanged
// before a wait counts the bytes of a change as complete; settleMax bounds it.
const (
	settleQuiet = 300 * time.Millisecond
	settleMax   = 10 * time.Second
)

// Main serves Commands from in and writes Replies to out until OpQuit or
// the end of in; it is the body of the sidecar process.
func Main(ctx context.Context, in io.Reader, out io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f := NewFleet()
	defer f.close()
	dec, enc := json.NewDecoder(in), json.NewEncoder(out)
	var start time.Time
	for {
		var cmd Command
		if err := dec.Decode(&cmd); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("reading a command: %w", err)
		}
		reply := Reply{Op: cmd.Op}
		switch cmd.Op {
		case OpConnect:
			start = time.Now()
			reply.Result, reply.Err = f.handleConnect(ctx, cmd, start)
		case OpExpect:
			reply.Affected = f.arm(cmd.Expect)
		case OpAwait:
			reply.Result = f.awaitExpectation(cmd)
		case OpVerify:
			reply.Failures = f.verify(cmd.Verify)
		case OpQuit:
			return enc.Encode(reply)
		default:
			reply.Err = "unknown op " + cmd.Op
		}
		if err := enc.Encode(reply); err != nil {
			return fmt.Errorf("writing a reply: %w", err)
		}
	}
}

func (f *Fleet) handleConnect(ctx context.Context, cmd Command, start time.Time) (*Result, string) {
	before, resent := f.bytes.Load(), f.resent.Load()
	if err := f.connect(ctx, cmd); err != nil {
		return nil, err.Error()
	}
	deadline := start.Add(cmd.Deadline)
	for f.completed() < len(cmd.Nodes) && time.Now().Before(deadline) && !f.allEnded() {
		time.Sleep(pollEvery)
	}
	f.mu.Lock()
	lat := sinceAll(start, f.complete)
	f.mu.Unlock()
	res := &Result{Proxies: len(cmd.Nodes), Done: len(lat), Latencies: lat, Bytes: f.settledBytes() - before,
		StreamErrors: append(f.streamErrors(), f.incomplete()...)}
	res.Resent = f.resent.Load() - resent
	return res, ""
}

func (f *Fleet) completed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.complete)
}

// allEnded reports whether every stream failed: nothing more will come.
func (f *Fleet) allEnded() bool {
	for _, p := range f.proxies {
		p.mu.Lock()
		failed := p.err != nil
		p.mu.Unlock()
		if !failed {
			return false
		}
	}
	return true
}

// awaitExpectation waits until every affected proxy met the armed expectation.
func (f *Fleet) awaitExpectation(cmd Command) *Result {
	e := f.currentExpectation()
	t0 := time.Unix(0, cmd.T0)
	before, resent := f.bytes.Load(), f.resent.Load()
	want := len(f.proxies)
	if e.affected != nil {
		want = len(e.affected)
	}
	deadline := time.Now().Add(cmd.Deadline)
	for f.metCount(e) < want && time.Now().Before(deadline) {
		time.Sleep(pollEvery)
	}
	f.mu.Lock()
	times := make([]time.Time, 0, len(e.met))
	for _, at := range e.met {
		times = append(times, at)
	}
	f.mu.Unlock()
	lat := sinceAll(t0, times)
	res := &Result{Proxies: want, Done: len(lat), Latencies: lat, Bytes: f.settledBytes() - before, StreamErrors: f.streamErrors()}
	res.Resent = f.resent.Load() - resent
	return res
}

func (f *Fleet) metCount(e *expectation) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(e.met)
}

// settledBytes waits until no bytes arrived for settleQuiet (at most
// settleMax) and returns the count.
func (f *Fleet) settledBytes() int64 {
	last, lastChange, start := f.bytes.Load(), time.Now(), time.Now()
	for time.Since(lastChange) < settleQuiet && time.Since(start) < settleMax {
		time.Sleep(pollEvery)
		if n := f.bytes.Load(); n != last {
			last, lastChange = n, time.Now()
		}
	}
	return last
}

func sinceAll(t0 time.Time, times []time.Time) []float64 {
	out := make([]float64, 0, len(times))
	for _, at := range times {
		out = append(out, at.Sub(t0).Seconds())
	}
	slices.Sort(out)
	return out
}

// incomplete describes the first few proxies without a complete config.
func (f *Fleet) incomplete() []string {
	var out []string
	for _, p := range f.proxies {
		if len(out) == 3 {
			break
		}
		if d := p.missing(); d != "" {
			out = append(out, p.id+": "+d)
		}
	}
	return out
}

// verify checks every proxy against v and returns the first failures.
func (f *Fleet) verify(v Verification) []string {
	var failures []string
	for _, p := range f.proxies {
		if err := p.verify(v); err != nil {
			failures = append(failures, p.id+": "+err.Error())
			if len(failures) == 10 {
				break
			}
		}
	}
	return failures
}

func (p *proxy) verify(v Verification) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	if !p.complete() {
		return errors.New("config incomplete")
	}
	assignments, splits := map[string]bool{}, map[string]bool{}
	for _, in := range p.have[resource.EndpointType] {
		assignments[strings.Join(in.ips, " ")] = true
	}
	for _, in := range p.have[resource.RouteType] {
		for _, s := range in.splits {
			splits[s] = true
		}
	}
	for i, ips := range v.Services {
		if !assignments[strings.Join(uniqueSorted(slices.Clone(ips)), " ")] {
			return fmt.Errorf("no endpoint assignment of service %d with addresses %v (holds %d assignments)", i, ips, len(assignments))
		}
	}
	for _, s := range v.Splits {
		if !splits[s] {
			return fmt.Errorf("no route splitting %s (holds %v)", s, splits)
		}
	}
	return nil
}
