package meshstatus

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// statusWrite matches a write of a status subresource.
var statusWrite = regexp.MustCompile(`\.Status\(\)\.(Update|Patch|Apply)\(|SubResource\("status"\)`)

// TestOneStatusWriterPerObject: outside tests, status subresources are
// written in two places only: the Mesh's writer (this package) and the
// shared loop of the other kinds' status reconcilers (controllers/status.go).
// A reporter that writes the Mesh status itself again fails here.
func TestOneStatusWriterPerObject(t *testing.T) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	var writers []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		// test/ and the playground play the kubelet: they write Pod status.
		if d.IsDir() && (rel == "bin" || rel == "test" || rel == "cmd/capstan-playground" || strings.HasPrefix(d.Name(), ".")) && rel != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if statusWrite.Match(src) {
			writers = append(writers, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(writers)
	want := []string{"controllers/meshstatus/writer.go", "controllers/status.go"}
	if diff := cmp.Diff(want, writers); diff != "" {
		t.Errorf("files writing a status subresource (-want +got):\n%s", diff)
	}
}
