package rules

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capstanmesh/capstan/internal/golden"
)

// A golden case is testdata/<case>.flags: capstan-init's arguments, one per
// line ('#' starts a comment). Its output is <case>.rules (what --dry-run
// prints) or, when the flags are refused, <case>.error.txt.
const inputSuffix = ".flags"

var outputSuffixes = []string{".rules", ".error.txt"}

func TestGolden(t *testing.T) {
	cases := goldenCases(t)
	if len(cases) < 4 {
		t.Errorf("%d golden cases, want at least 4", len(cases))
	}
	for _, name := range cases {
		t.Run(name, func(t *testing.T) {
			suffix, got := runCase(t, name)
			checkGolden(t, filepath.Join("testdata", name+suffix), got)
		})
	}
}

func runCase(t *testing.T, name string) (string, []byte) {
	t.Helper()
	opts, err := ParseFlags(readArgs(t, filepath.Join("testdata", name+inputSuffix)), io.Discard)
	var steps []Step
	if err == nil {
		steps, err = Plan(opts)
	}
	if err != nil {
		return ".error.txt", []byte(err.Error() + "\n")
	}
	var b strings.Builder
	for _, s := range steps {
		b.WriteString(s.Input)
	}
	return ".rules", []byte(b.String())
}

func readArgs(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for line := range strings.Lines(string(data)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			args = append(args, line)
		}
	}
	return args
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	golden.Check(t, path, got)
}

// TestGoldenOrphans fails on an output its case does not produce; -update removes it.
func TestGoldenOrphans(t *testing.T) {
	produced := map[string]bool{}
	for _, name := range goldenCases(t) {
		suffix, _ := runCase(t, name)
		produced[filepath.Join("testdata", name+suffix)] = true
	}
	golden.CheckOrphans(t, outputSuffixes, produced)
}

func goldenCases(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*"+inputSuffix))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no golden inputs in testdata: %v", err)
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = strings.TrimSuffix(filepath.Base(p), inputSuffix)
	}
	return names
}
