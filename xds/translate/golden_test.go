package translate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/capstanmesh/capstan/internal/golden"
)

const (
	inSuffix  = ".in.yaml"
	outSuffix = ".out.yaml"
)

// TestGolden translates every testdata/<case>.in.yaml and compares the result
// with <case>.out.yaml (go test ./xds/translate -update rewrites them).
func TestGolden(t *testing.T) {
	for _, in := range goldenInputs(t) {
		name := strings.TrimSuffix(filepath.Base(in), inSuffix)
		t.Run(name, func(t *testing.T) {
			golden.Check(t, outputOf(in), marshalResult(t, translateFile(t, in)))
		})
	}
}

// TestGoldenOrphans fails on an output without an input; -update removes it.
func TestGoldenOrphans(t *testing.T) {
	produced := map[string]bool{}
	for _, in := range goldenInputs(t) {
		produced[outputOf(in)] = true
	}
	golden.CheckOrphans(t, []string{outSuffix}, produced)
}

// outputOf names the golden output of the input at path.
func outputOf(in string) string { return strings.TrimSuffix(in, inSuffix) + outSuffix }

// readInputs parses a golden input strictly: unknown fields fail.
func readInputs(t *testing.T, path string) *Inputs {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	in := &Inputs{}
	if err := yaml.UnmarshalStrict(data, in); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return in
}

func translateFile(t *testing.T, path string) *Result {
	t.Helper()
	res, err := Translate(readInputs(t, path))
	if err != nil {
		t.Fatalf("Translate(%s): %v", path, err)
	}
	return res
}

func marshalResult(t *testing.T, res *Result) []byte {
	t.Helper()
	out, err := yaml.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func goldenInputs(t *testing.T) []string {
	t.Helper()
	ins, err := filepath.Glob(filepath.Join("testdata", "*"+inSuffix))
	if err != nil || len(ins) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	return ins
}
