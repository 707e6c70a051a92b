package generate

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/capstanmesh/capstan/internal/golden"
	"github.com/capstanmesh/capstan/xds/ir"
)

// goldenCase is testdata/<case>/mesh.yaml: a mesh and the proxy to generate for.
type goldenCase struct {
	// Proxy is the ID of one of Mesh.Proxies.
	Proxy string  `json:"proxy"`
	Mesh  ir.Mesh `json:"mesh"`
}

const caseFile = "mesh.yaml"

// outputFiles are every file a case may have besides mesh.yaml; errors.yaml
// only when generation reports per-object errors.
var outputFiles = []string{"listeners.yaml", "routes.yaml", "clusters.yaml", "endpoints.yaml", "errors.yaml"}

func TestGolden(t *testing.T) {
	for _, dir := range caseDirs(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			res, errs := generateCase(t, dir)
			want := renderOutputs(t, res, errs)
			for _, name := range outputFiles {
				checkGolden(t, filepath.Join(dir, name), want[name])
			}
		})
	}
}

// TestGoldenFilesHaveCases reports anything under testdata/ that is not a
// case directory with a mesh.yaml and its outputs.
func TestGoldenFilesHaveCases(t *testing.T) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		path := filepath.Join("testdata", e.Name())
		if e.Name() == "fuzz" && e.IsDir() {
			continue // go test's corpus of failing fuzz inputs
		}
		if e.Name() == sdsGoldenDir && e.IsDir() {
			continue // the SDS secrets golden (secrets_test.go)
		}
		if !e.IsDir() {
			t.Errorf("%s: golden file outside a case directory", path)
			continue
		}
		if _, err := os.Stat(filepath.Join(path, caseFile)); err != nil {
			t.Errorf("%s: golden files with no %s", path, caseFile)
		}
		files, _ := os.ReadDir(path)
		for _, f := range files {
			if f.Name() != caseFile && !slices.Contains(outputFiles, f.Name()) {
				t.Errorf("%s: unexpected file %s", path, f.Name())
			}
		}
	}
}

// caseDirs lists testdata/<case>/ directories with a mesh.yaml, sorted.
func caseDirs(t *testing.T) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join("testdata", "*", caseFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(matches) == 0 {
		t.Fatal("no golden cases under testdata/")
	}
	dirs := make([]string, len(matches))
	for i, m := range matches {
		dirs[i] = filepath.Dir(m)
	}
	sort.Strings(dirs)
	return dirs
}

// readCase reads a mesh.yaml strictly: unknown fields fail.
func readCase(t *testing.T, dir string) *goldenCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, caseFile))
	if err != nil {
		t.Fatal(err)
	}
	var c goldenCase
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		t.Fatalf("%s/%s: %v", dir, caseFile, err)
	}
	return &c
}

// generateCase runs For (ForProxy, or ForGRPC for a proxy of kind GRPC) on a case; a fatal error fails the test.
func generateCase(t *testing.T, dir string) (*Resources, Errors) {
	t.Helper()
	c := readCase(t, dir)
	proxy := c.Mesh.ProxyByID(c.Proxy)
	if proxy == nil {
		t.Fatalf("%s: proxy %q is not in mesh.proxies", dir, c.Proxy)
	}
	res, err := For(&c.Mesh, proxy)
	var errs Errors
	if err != nil && !errors.As(err, &errs) {
		t.Fatalf("ForProxy: %v", err)
	}
	return res, errs
}

// renderOutputs renders one YAML document per resource type (a list of
// resources in protojson form) and, when there are any, the errors.
func renderOutputs(t *testing.T, res *Resources, errs Errors) map[string][]byte {
	t.Helper()
	out := map[string][]byte{
		"listeners.yaml": renderList(t, res.Listeners),
		"routes.yaml":    renderList(t, res.Routes),
		"clusters.yaml":  renderList(t, res.Clusters),
		"endpoints.yaml": renderList(t, res.Endpoints),
	}
	if len(errs) > 0 {
		out["errors.yaml"] = renderErrors(t, errs)
	}
	return out
}

func renderList[T proto.Message](t *testing.T, list []T) []byte {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteString("[")
	opts := protojson.MarshalOptions{UseProtoNames: true}
	for i, m := range list {
		if i > 0 {
			buf.WriteString(",")
		}
		b, err := opts.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(b)
	}
	buf.WriteString("]")
	// protojson's whitespace is deliberately unstable; re-marshalling through
	// YAML normalises it (and sorts keys).
	y, err := yaml.JSONToYAML(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return y
}

type renderedError struct {
	Source  string `json:"source,omitempty"`
	Error   string `json:"error"`
	Warning bool   `json:"warning,omitempty"`
}

func renderErrors(t *testing.T, errs Errors) []byte {
	t.Helper()
	out := make([]renderedError, len(errs))
	for i, e := range errs {
		out[i].Error, out[i].Warning = e.Err.Error(), e.Warning
		if e.Source != nil {
			out[i].Source = e.Source.String()
		}
	}
	b, err := yaml.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkGolden compares a golden file with want (nil: the file must not exist).
// With -update (go test ./xds/generate -update) it rewrites or removes the
// file instead.
func checkGolden(t *testing.T, path string, want []byte) {
	t.Helper()
	if want == nil {
		golden.CheckAbsent(t, path)
		return
	}
	golden.Check(t, path, want)
}
