// Package envoytest finds the real Envoy binary of the tests and asks it to
// validate configurations.
//
// The binary is $CAPSTAN_ENVOY (make exports it; `make envoy` installs it),
// else <repo>/bin/envoy-<ENVOY_VERSION of the Makefile>. A test that needs
// Envoy fails when CAPSTAN_ENVOY names a missing file, and skips (saying to
// run `make envoy`) only when CAPSTAN_ENVOY is unset and no binary exists, or
// under -short (`make test-unit`, the fast loop) when the binary is missing:
// under `make test`, as in CI, it always runs.
package envoytest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// EnvVar names the Envoy binary; the Makefile exports it.
const EnvVar = "CAPSTAN_ENVOY"

// Path returns the Envoy binary, failing tb when $CAPSTAN_ENVOY is set but
// unusable and skipping it when neither it nor bin/envoy-<version> exists.
// Under -short a missing binary skips tb in either case.
func Path(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv(EnvVar); p != "" {
		if err := checkExecutable(p); err != nil {
			if errors.Is(err, os.ErrNotExist) && testing.Short() {
				tb.Skipf("no Envoy at %s=%s, and -short (make test-unit) skips what needs it; make test runs it", EnvVar, p)
			}
			tb.Fatalf("%s: %v (run make envoy)", EnvVar, err)
		}
		return p
	}
	root, err := RepoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	version, err := MakefileVersion(root)
	if err != nil {
		tb.Fatal(err)
	}
	p := filepath.Join(root, "bin", "envoy-"+version)
	if err := checkExecutable(p); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			tb.Skipf("no Envoy: %s is unset and %s does not exist; run make envoy", EnvVar, p)
		}
		tb.Fatal(err)
	}
	return p
}

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// Validate runs `envoy --mode validate <args>` (args name the config: -c
// <file> or --config-yaml <yaml>, plus any flags the proxy runs with). An
// error carries Envoy's own message.
func Validate(ctx context.Context, envoy string, args ...string) error {
	cmd := exec.CommandContext(ctx, envoy, append([]string{"--mode", "validate"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("envoy --mode validate: %w: %s", err, message(out))
	}
	return nil
}

// logPrefix is the prefix of Envoy's log lines: [time][thread][level][logger] [file:line].
var logPrefix = regexp.MustCompile(`^\[[^]]*\]\[[^]]*\]\[(\w+)\]\[[^]]*\] (\[[^]]*\] )?`)

// message is Envoy's own error: its critical and error log lines without
// their prefixes, else (a command line error) the first paragraph it printed
// that is not a log line (the usage text that follows is left out).
func message(out []byte) string {
	var errs, other []string
	otherDone := false
	for line := range strings.SplitSeq(string(bytes.TrimSpace(out)), "\n") {
		if m := logPrefix.FindStringSubmatch(line); m != nil {
			if m[1] == "critical" || m[1] == "error" {
				errs = append(errs, line[len(m[0]):])
			}
			continue
		}
		if strings.TrimSpace(line) == "" {
			otherDone = otherDone || len(other) > 0
			continue
		}
		if !otherDone {
			other = append(other, line)
		}
	}
	if len(errs) > 0 {
		return strings.Join(errs, "\n")
	}
	return strings.Join(other, "\n")
}

// RepoRoot is the directory of the module's go.mod, found upwards from the
// working directory (a package directory under go test).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find the repository: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find the repository: no go.mod above the working directory")
		}
		dir = parent
	}
}

var makefileVersion = regexp.MustCompile(`(?m)^ENVOY_VERSION \?= (\S+)$`)

// MakefileVersion is the Makefile's ENVOY_VERSION: the Envoy release `make
// envoy` installs.
func MakefileVersion(root string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		return "", fmt.Errorf("read the Envoy version: %w", err)
	}
	m := makefileVersion.FindSubmatch(b)
	if m == nil {
		return "", errors.New("the Makefile sets no ENVOY_VERSION ?= <version>")
	}
	return string(m[1]), nil
}

// ExpandArgs expands container arguments as the kubelet does: $(NAME)
// becomes env[NAME] when it is set (else stays as written), and $$ becomes $.
// It turns an injected proxy's arguments into Envoy's command line.
func ExpandArgs(args []string, env map[string]string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = Expand(a, env)
	}
	return out
}

// Expand does the kubelet's expansion of one argument or env value:
// $(NAME) becomes env[NAME] when it is set (else stays), and $$ becomes $.
func Expand(s string, env map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			if v, ok := env[s[i+2:i+2+end]]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}
