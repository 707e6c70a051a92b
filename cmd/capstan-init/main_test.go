package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// script writes an executable shell script into dir and returns its path.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRunDryRunPrintsWithoutApplying(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	prog := script(t, dir, "restore", "touch "+marker)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--dry-run", "--ipv6", "--iptables-restore=" + prog, "--ip6tables-restore=" + prog}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if got := strings.Count(stdout.String(), "COMMIT\n"); got != 2 {
		t.Errorf("dry run printed %d rule sets, want 2:\n%s", got, stdout.String())
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("dry run ran the restore program")
	}
}

func TestRunPipesRulesToEachProgram(t *testing.T) {
	dir := t.TempDir()
	v4 := script(t, dir, "v4", "cat > "+filepath.Join(dir, "v4.in"))
	v6 := script(t, dir, "v6", "cat > "+filepath.Join(dir, "v6.in"))
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--pod-ips=10.0.0.7,fd00::7", "--iptables-restore=" + v4, "--ip6tables-restore=" + v6}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var both strings.Builder
	for _, f := range []string{"v4.in", "v6.in"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		both.Write(data)
	}
	if both.String() != stdout.String() {
		t.Errorf("programs got:\n%s\nstdout printed:\n%s", both.String(), stdout.String())
	}
	if !strings.Contains(stdout.String(), "-s ::6/128 -o lo -j RETURN") {
		t.Errorf("no IPv6 rules in:\n%s", stdout.String())
	}
}

func TestRunReportsFailures(t *testing.T) {
	dir := t.TempDir()
	failing := script(t, dir, "restore", "echo 'iptables-restore: line 3 failed' >&2; exit 4")
	for name, tc := range map[string]struct {
		args []string
		code int
		want string
	}{
		"program fails": {[]string{"--iptables-restore=" + failing}, 1,
			"capstan-init: " + failing + ": exit status 4: iptables-restore: line 3 failed\n"},
		"program missing": {[]string{"--iptables-restore=" + filepath.Join(dir, "absent")}, 1,
			"capstan-init: " + filepath.Join(dir, "absent") + ": fork/exec " + filepath.Join(dir, "absent") + ": no such file or directory\n"},
		"bad flag": {[]string{"--exclude-outbound-ports=5432,x"}, 2,
			`capstan-init: invalid value "5432,x" for flag -exclude-outbound-ports: "x" is not a port number` + "\n"},
	} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			if got := stderr.String(); !strings.HasSuffix(got, tc.want) {
				t.Errorf("stderr %q, want it to end with %q", got, tc.want)
			}
		})
	}
}

func TestRunHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, &stdout, &stderr); code != 0 {
		t.Errorf("--help exit %d", code)
	}
	if !strings.Contains(stderr.String(), "--exclude-outbound-ip-ranges") && !strings.Contains(stderr.String(), "-exclude-outbound-ip-ranges") {
		t.Errorf("usage does not list the flags:\n%s", stderr.String())
	}
}
