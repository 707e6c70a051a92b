package inject

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"

	"github.com/capstanmesh/capstan/internal/golden"
)

// A golden case is testdata/<case>.yaml: a Pod, optionally followed by a
// Namespace (default: the pod's namespace, labelled capstan.dev/inject=enabled)
// and a Mesh (default: none), as YAML documents. Its output is exactly one of
// <case>.injected.yaml (the injected pod), <case>.error.txt (Inject's error)
// or <case>.skipped.txt (ShouldInject's reason).
const inputSuffix = ".yaml"

var outputSuffixes = []string{".injected.yaml", ".error.txt", ".skipped.txt"}

// goldenOptions are the injector options every case runs with.
var goldenOptions = Options{OperatorNamespace: "capstan-system", Version: "v0.1.0"}

type goldenCase struct {
	name string
	pod  *corev1.Pod
	ns   *corev1.Namespace
	mesh *meshv1alpha1.Mesh
}

func (c goldenCase) config() Config { return ConfigFromMesh(c.mesh, goldenOptions) }

func TestGolden(t *testing.T) {
	cases := goldenCases(t)
	if len(cases) < 15 {
		t.Errorf("%d golden cases, want at least 15", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			suffix, got := runCase(c)
			checkGolden(t, filepath.Join("testdata", c.name+suffix), got)
		})
	}
}

// runCase decides and injects as the admission handler will, and returns
// the output file's suffix and content.
func runCase(c goldenCase) (string, []byte) {
	cfg := c.config()
	if ok, reason := ShouldInject(c.pod, c.ns, cfg); !ok {
		return ".skipped.txt", []byte(reason + "\n")
	}
	out, err := Inject(c.pod, cfg)
	if err != nil {
		return ".error.txt", []byte(err.Error() + "\n")
	}
	data, err := yaml.Marshal(out)
	if err != nil {
		panic(err)
	}
	return ".injected.yaml", data
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	golden.Check(t, path, got)
}

// TestGoldenOrphans fails on an output that its case does not produce (no
// input, or a different kind of result); -update removes it. It runs after
// TestGolden, so -update first writes the current outputs.
func TestGoldenOrphans(t *testing.T) {
	produced := map[string]bool{}
	for _, c := range goldenCases(t) {
		suffix, _ := runCase(c)
		produced[filepath.Join("testdata", c.name+suffix)] = true
	}
	golden.CheckOrphans(t, outputSuffixes, produced)
}

func goldenCases(t *testing.T) []goldenCase {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*"+inputSuffix))
	if err != nil {
		t.Fatal(err)
	}
	var cases []goldenCase
	for _, p := range paths {
		if isOutput(p) {
			continue
		}
		cases = append(cases, readCase(t, p))
	}
	if len(cases) == 0 {
		t.Fatal("no golden inputs in testdata")
	}
	return cases
}

func isOutput(path string) bool {
	return slices.ContainsFunc(outputSuffixes, func(s string) bool { return strings.HasSuffix(path, s) })
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// readCase parses a case strictly: unknown fields and kinds fail.
func readCase(t *testing.T, path string) goldenCase {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c := goldenCase{name: strings.TrimSuffix(filepath.Base(path), inputSuffix)}
	for _, doc := range docSeparator.Split(string(data), -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		if err := c.add([]byte(doc)); err != nil {
			t.Fatalf("parse %s: %v", path, err)
		}
	}
	if c.pod == nil {
		t.Fatalf("%s: no Pod", path)
	}
	if c.ns == nil {
		c.ns = &corev1.Namespace{}
		c.ns.Name = c.pod.Namespace
		c.ns.Labels = map[string]string{meshv1alpha1.LabelInject: meshv1alpha1.InjectEnabled}
	}
	return c
}

func (c *goldenCase) add(doc []byte) error {
	var meta struct {
		Kind string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		return err
	}
	var target any
	switch meta.Kind {
	case "Pod":
		c.pod = &corev1.Pod{}
		target = c.pod
	case "Namespace":
		c.ns = &corev1.Namespace{}
		target = c.ns
	case "Mesh":
		c.mesh = &meshv1alpha1.Mesh{}
		target = c.mesh
	default:
		return errors.New("unknown kind " + meta.Kind)
	}
	return yaml.UnmarshalStrict(doc, target)
}
