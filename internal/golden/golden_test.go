package golden

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	errors []string
	fatal  string
}

var errFatal = errors.New("fatal")

// The package's helpers fail only through these; anything else reaches the
// real test.
func (r *recorder) Helper()                   {}
func (r *recorder) Errorf(f string, a ...any) { r.errors = append(r.errors, fmt.Sprintf(f, a...)) }
func (r *recorder) Fatal(a ...any)            { r.fatal = fmt.Sprint(a...); panic(errFatal) }
func (r *recorder) Fatalf(f string, a ...any) { r.fatal = fmt.Sprintf(f, a...); panic(errFatal) }

func (r *recorder) failed() bool { return len(r.errors) > 0 || r.fatal != "" }

func (r *recorder) said(substr string) bool {
	return strings.Contains(strings.Join(r.errors, "\n")+r.fatal, substr)
}

func (r *recorder) String() string { return fmt.Sprintf("errors %q, fatal %q", r.errors, r.fatal) }

// record runs f with a recorder; a Fatal stops f as it stops a test.
func record(t *testing.T, f func(tb testing.TB)) *recorder {
	t.Helper()
	r := &recorder{TB: t}
	func() {
		defer func() {
			if p := recover(); p != nil && p != errFatal { //nolint:errorlint // the sentinel itself
				panic(p)
			}
		}()
		f(r)
	}()
	return r
}

// setUpdate sets -update for the test and restores it afterwards.
func setUpdate(t *testing.T, on bool) {
	t.Helper()
	was := Update()
	if err := flag.Set("update", strconv.FormatBool(on)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = flag.Set("update", strconv.FormatBool(was)) })
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCheckComparesWithoutUpdate(t *testing.T) {
	setUpdate(t, false)
	path := filepath.Join(t.TempDir(), "case.out")
	writeFile(t, path, "same\n")

	if r := record(t, func(tb testing.TB) { Check(tb, path, []byte("same\n")) }); r.failed() {
		t.Errorf("an equal golden failed: %v", r)
	}
	r := record(t, func(tb testing.TB) { Check(tb, path, []byte("changed\n")) })
	if !r.said("is stale") || !r.said("-update") {
		t.Errorf("a stale golden: %v, want a failure saying it is stale and naming -update", r)
	}
	if got := readFile(t, path); got != "same\n" {
		t.Errorf("a check without -update wrote the golden: %q", got)
	}
	missing := filepath.Join(t.TempDir(), "missing.out")
	if r := record(t, func(tb testing.TB) { Check(tb, missing, []byte("x")) }); r.fatal == "" {
		t.Errorf("a missing golden: %v, want a fatal failure", r)
	}
}

func TestCheckWritesWithUpdate(t *testing.T) {
	setUpdate(t, true)
	dir := t.TempDir()
	stale, missing := filepath.Join(dir, "stale.out"), filepath.Join(dir, "missing.out")
	writeFile(t, stale, "old\n")

	for _, path := range []string{stale, missing} {
		if r := record(t, func(tb testing.TB) { Check(tb, path, []byte("new\n")) }); r.failed() {
			t.Errorf("-update on %s failed: %v", path, r)
		}
		if got := readFile(t, path); got != "new\n" {
			t.Errorf("-update wrote %q to %s, want %q", got, path, "new\n")
		}
	}
}

func TestCheckAbsent(t *testing.T) {
	dir := t.TempDir()
	present, absent := filepath.Join(dir, "errors.yaml"), filepath.Join(dir, "none.yaml")
	writeFile(t, present, "old\n")

	setUpdate(t, false)
	if r := record(t, func(tb testing.TB) { CheckAbsent(tb, absent) }); r.failed() {
		t.Errorf("an absent file failed: %v", r)
	}
	if r := record(t, func(tb testing.TB) { CheckAbsent(tb, present) }); !r.said("is stale") {
		t.Errorf("a file its case no longer produces: %v, want a stale failure", r)
	}
	setUpdate(t, true)
	if r := record(t, func(tb testing.TB) { CheckAbsent(tb, present) }); r.failed() {
		t.Errorf("-update failed: %v", r)
	}
	if _, err := os.Stat(present); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("-update left %s: %v", present, err)
	}
}

func TestCheckOrphans(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, f := range []string{"a.in", "a.out", "b.out", "c.err"} {
		writeFile(t, filepath.Join("testdata", f), f)
	}
	produced := map[string]bool{filepath.Join("testdata", "a.out"): true}
	suffixes := []string{".out", ".err"}

	setUpdate(t, false)
	r := record(t, func(tb testing.TB) { CheckOrphans(tb, suffixes, produced) })
	if len(r.errors) != 2 || !r.said("testdata/b.out") || !r.said("testdata/c.err") {
		t.Errorf("orphans b.out and c.err: %v, want one failure for each", r)
	}
	setUpdate(t, true)
	if r := record(t, func(tb testing.TB) { CheckOrphans(tb, suffixes, produced) }); r.failed() {
		t.Errorf("-update failed: %v", r)
	}
	left, err := filepath.Glob(filepath.Join("testdata", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "testdata/a.in testdata/a.out"; strings.Join(left, " ") != want {
		t.Errorf("after -update testdata holds %v, want %s", left, want)
	}
}
