// Package golden holds what the golden-file tests share, the -update flag
// included: `go test ./some/pkg -update` rewrites that package's golden files
// under testdata/ from the code's output and removes the ones no case
// produces any more. Without -update a stale, missing or orphaned golden
// fails the test.
//
// The flag is registered when this package is initialised, so import it from
// tests only, and do not define another -update flag beside it.
package golden

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ from the code's output and remove orphans")

// Update reports whether the test runs with -update.
func Update() bool { return *update }

// Check compares got with the golden file at path, or writes it there with
// -update.
func Check(t testing.TB, path string, got []byte) {
	t.Helper()
	if Update() {
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

// CheckAbsent fails t when the golden file at path exists (its case no
// longer produces that output), or removes it with -update.
func CheckAbsent(t testing.TB, path string) {
	t.Helper()
	_, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		t.Fatal(err)
	case Update():
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	default:
		t.Errorf("%s is stale: its case produces no such output (run go test with -update to remove it)", path)
	}
}

// CheckOrphans looks at every file in testdata/ ending in one of suffixes:
// one that is not in produced (the outputs the cases wrote, by path) fails
// t, or is removed with -update.
func CheckOrphans(t testing.TB, suffixes []string, produced map[string]bool) {
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
			if Update() {
				if err := os.Remove(out); err != nil {
					t.Fatal(err)
				}
				continue
			}
			t.Errorf("orphan golden %s: its case does not produce it (run go test with -update to remove it)", out)
		}
	}
}
