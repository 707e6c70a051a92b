// Package golden holds what the golden-file tests share.
package golden

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// CheckOrphans looks at every file in testdata/ ending in one of suffixes:
// one that is not in produced (the outputs the cases wrote, by path) fails
// t, or is removed when update is set.
func CheckOrphans(t testing.TB, suffixes []string, produced map[string]bool, update bool) {
	t.Helper()
	for _, suffix := range suffixes {
		outs, err := filepath.Glob(filepath.Join("testdata", "*"+suffix))
		if err != nil {
			t.Fatal(err)
		}
		for _, out := range outs {
			if produced[out] {
				continue
			}
			if update {
				if err := os.Remove(out); err != nil {
					t.Fatal(err)
				}
				continue
			}
			t.Errorf("orphan golden %s: its case does not produce it (run -update to remove it)", out)
		}
	}
}

// Check compares got with the golden file at path, or writes it there when
// update is set.
func Check(t testing.TB, path string, got []byte, update bool) {
	t.Helper()
	if update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s is stale (-want +got); run go test with -update:\n%s", path, diff)
	}
}
