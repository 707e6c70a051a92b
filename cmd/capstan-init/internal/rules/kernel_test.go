package rules

import (
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestRulesLoadIntoTheKernel restores every golden case's rules with the real
// restore programs, each in a fresh network namespace (unshare -n), and
// checks that the kernel holds as many rules as were rendered. It needs root,
// unshare and the iptables package, and is skipped without them and under
// -short (make test-unit).
func TestRulesLoadIntoTheKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("-short (make test-unit) creates no network namespaces; make test runs it")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	for _, tool := range []string{"unshare", "iptables-restore", "iptables-save", "ip6tables-restore", "ip6tables-save"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	if err := exec.Command("unshare", "-n", "true").Run(); err != nil {
		t.Skipf("cannot create a network namespace: %v", err)
	}
	for _, name := range goldenCases(t) {
		opts, err := ParseFlags(readArgs(t, "testdata/"+name+inputSuffix), io.Discard)
		if err != nil {
			continue
		}
		for _, f := range opts.Families() {
			t.Run(name+"/"+string(f), func(t *testing.T) {
				in, err := Render(opts.Config, f)
				if err != nil {
					t.Fatal(err)
				}
				prog := restoreProgram(f)
				save := strings.Replace(prog, "restore", "save", 1)
				// Restore twice: the second run must replace, not append.
				cmd := exec.Command("unshare", "-n", "sh", "-c", prog+" && "+prog+" <&3 && "+save+" -t nat")
				cmd.Stdin = strings.NewReader(in)
				cmd.ExtraFiles = []*os.File{pipeOf(t, in)}
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("%s: %v\n%s\ninput:\n%s", prog, err, out, in)
				}
				if got, want := strings.Count(string(out), "\n-A "), strings.Count(in, "\n-A "); got != want {
					t.Errorf("kernel holds %d rules, rendered %d:\n%s", got, want, out)
				}
			})
		}
	}
}

// pipeOf returns a file that reads s.
func pipeOf(t *testing.T, s string) *os.File {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_, _ = w.WriteString(s)
		_ = w.Close()
	}()
	t.Cleanup(func() { _ = r.Close() })
	return r
}
