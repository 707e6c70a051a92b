package translate

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite testdata/*.out.yaml from Translate's output and remove orphans")

const (
	inSuffix  = ".in.yaml"
	outSuffix = ".out.yaml"
)

// TestGolden translates every testdata/<case>.in.yaml and compares the result
// with <case>.out.yaml.
func TestGolden(t *testing.T) {
	ins, err := filepath.Glob(filepath.Join("testdata", "*"+inSuffix))
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) == 0 {
		t.Fatal("no golden inputs in testdata")
	}
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), inSuffix)
		t.Run(name, func(t *testing.T) {
			out := strings.TrimSuffix(in, inSuffix) + outSuffix
			got := marshalResult(t, translateFile(t, in))
			if *update {
				if err := os.WriteFile(out, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(out)
			if err != nil {
				t.Fatalf("%v (run go test ./xds/translate -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s is stale (-want +got); run go test ./xds/translate -update:\n%s", out, diff)
			}
		})
	}
}

// TestGoldenOrphans fails on an output without an input; -update removes it.
func TestGoldenOrphans(t *testing.T) {
	outs, err := filepath.Glob(filepath.Join("testdata", "*"+outSuffix))
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range outs {
		in := strings.TrimSuffix(out, outSuffix) + inSuffix
		if _, err := os.Stat(in); err == nil {
			continue
		}
		if *update {
			if err := os.Remove(out); err != nil {
				t.Fatal(err)
			}
			continue
		}
		t.Errorf("orphan golden %s: %s does not exist (run -update to remove it)", out, in)
	}
}

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
