package image

import (
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/capstanmesh/capstan/test/envtest"
	"github.com/capstanmesh/capstan/webhook/inject"
)

// finalStages are the images the Dockerfile ships, with the bases they may
// use: no shell in either.
var finalStages = map[string][]string{
	"manager":      {"gcr.io/distroless/static-debian12:nonroot"},
	"capstan-init": {"scratch"},
}

func repoFile(t *testing.T, rel string) string {
	t.Helper()
	root, err := envtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, rel)
}

func readMakefile(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(repoFile(t, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func parse(t *testing.T) *Dockerfile {
	t.Helper()
	d, err := ParseDockerfile(repoFile(t, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var (
	makeBuild   = regexp.MustCompile(`(?m)^\tgo build -ldflags "\$\(GO_LDFLAGS\)" -o \$\(BIN\)/(\S+) (\./cmd/\S+)$`)
	dockerBuild = regexp.MustCompile(`go build .*-ldflags "(.*)" -o /out/(\S+) (\./cmd/\S+)$`)
	envLine     = regexp.MustCompile(`LDFLAGS="([^"]*)"`)
	makeVar     = func(name string) *regexp.Regexp { return regexp.MustCompile(`(?m)^` + name + ` \?= (\S+)$`) }
)

// TestDockerfileBuildsWhatTheMakefileBuilds: the builder stage builds the
// binaries of `make build` from the same packages, stamped with the version
// the same way; the final stages copy only those.
func TestDockerfileBuildsWhatTheMakefileBuilds(t *testing.T) {
	mk := readMakefile(t)
	want := map[string]string{}
	for _, m := range makeBuild.FindAllStringSubmatch(mk, -1) {
		want[m[1]] = m[2]
	}
	if len(want) == 0 {
		t.Fatal("found no `go build` in the Makefile's build target")
	}
	d := parse(t)
	builder := d.Stage("builder")
	if builder == nil {
		t.Fatal("no builder stage")
	}
	ldflags := ""
	for _, env := range builder.All("ENV") {
		if m := envLine.FindStringSubmatch(env); m != nil {
			ldflags = m[1]
		}
	}
	got := map[string]string{}
	for _, run := range builder.All("RUN") {
		if m := dockerBuild.FindStringSubmatch(run); m != nil {
			got[m[2]] = m[3]
			flags := strings.ReplaceAll(m[1], "${LDFLAGS}", ldflags)
			for _, x := range []string{"-X main.version=${VERSION}", "-X github.com/capstanmesh/capstan/cli/commands.Version=${VERSION}"} {
				if !strings.Contains(flags, x) {
					t.Errorf("%s is built with ldflags %q, without %s", m[2], flags, x)
				}
			}
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("the Dockerfile builds %v, the Makefile %v", got, want)
	}
	for name := range finalStages {
		s := d.Stage(name)
		if s == nil {
			t.Fatalf("no stage %s", name)
		}
		for _, c := range s.All("COPY") {
			if rest, ok := strings.CutPrefix(c, "--from=builder /out/"); ok {
				if bin := strings.Fields(rest)[0]; want[bin] == "" {
					t.Errorf("stage %s copies %s, which the Makefile does not build", name, bin)
				}
			}
		}
	}
	if !strings.Contains(mk, "--build-arg VERSION=$(VERSION)") {
		t.Error("make docker-build does not pass VERSION as a build argument")
	}
	goVersion := makeVar("GO_VERSION").FindStringSubmatch(mk)
	if goVersion == nil || !slices.Contains(d.GlobalArgs, "GO_VERSION="+goVersion[1]) {
		t.Errorf("the Dockerfile's GO_VERSION (%v) is not the Makefile's (%v)", d.GlobalArgs, goVersion)
	}
}

// TestDockerfileFinalStages: the shipped images run as a non-root user, on
// a base without a shell, run no command while building (RUN needs a shell
// in the image) and start their binary directly.
func TestDockerfileFinalStages(t *testing.T) {
	d := parse(t)
	for name, bases := range finalStages {
		s := d.Stage(name)
		if s == nil {
			t.Fatalf("no stage %s", name)
		}
		if !slices.Contains(bases, s.Base) {
			t.Errorf("stage %s is based on %s, want one of %v (no shell)", name, s.Base, bases)
		}
		if runs := s.All("RUN"); len(runs) > 0 {
			t.Errorf("stage %s runs %v: a final stage has no shell to run them", name, runs)
		}
		users := s.All("USER")
		if len(users) == 0 {
			t.Errorf("stage %s sets no USER", name)
		} else if uid, err := strconv.Atoi(strings.Split(users[len(users)-1], ":")[0]); err != nil || uid == 0 {
			t.Errorf("stage %s runs as %q, want a numeric non-root user", name, users[len(users)-1])
		}
		var entry []string
		eps := s.All("ENTRYPOINT")
		if len(eps) != 1 || json.Unmarshal([]byte(eps[0]), &entry) != nil || len(entry) == 0 {
			t.Errorf("stage %s ENTRYPOINT %v, want one in exec form", name, eps)
		}
	}
	// `docker build .` without --target builds the last stage: the manager.
	if last := d.Stages[len(d.Stages)-1]; last.Name != "manager" {
		t.Errorf("the last stage is %s, want manager", last.Name)
	}
}

// TestDockerfileCopiesTheSources: the builder copies every top-level
// directory of the module the binaries of `make build` import, and
// .dockerignore lets them into the build context.
func TestDockerfileCopiesTheSources(t *testing.T) {
	root := repoFile(t, ".")
	var pkgs []string
	for _, m := range makeBuild.FindAllStringSubmatch(readMakefile(t), -1) {
		pkgs = append(pkgs, m[2])
	}
	args := append([]string{"list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.ImportPath}}{{end}}{{end}}"}, pkgs...)
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	need := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		rel := strings.TrimPrefix(p, "github.com/capstanmesh/capstan/")
		need[strings.Split(rel, "/")[0]+"/"] = true
	}
	copied := map[string]bool{}
	for _, c := range parse(t).Stage("builder").All("COPY") {
		if f := strings.Fields(c); len(f) == 2 && !strings.HasPrefix(f[0], "--") {
			copied[strings.Split(f[0], "/")[0]+"/"] = true
		}
	}
	ignore, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range slices.Sorted(maps.Keys(need)) {
		if !copied[dir] {
			t.Errorf("the binaries import packages under %s, which the builder does not copy", dir)
		}
		if !strings.Contains(string(ignore), "\n!"+dir) {
			t.Errorf(".dockerignore keeps %s out of the build context", dir)
		}
	}
}

// TestBundleDockerfileContext: what bundle.Dockerfile copies is in the
// build context .dockerignore leaves (make bundle-build builds from the root).
func TestBundleDockerfileContext(t *testing.T) {
	d, err := ParseDockerfile(repoFile(t, "bundle.Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	ignore, err := os.ReadFile(repoFile(t, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	copies := d.Stages[len(d.Stages)-1].All("COPY")
	if len(copies) == 0 {
		t.Fatal("bundle.Dockerfile copies nothing")
	}
	for _, c := range copies {
		top := strings.Split(strings.Fields(c)[0], "/")[0] + "/"
		if !strings.Contains(string(ignore), "\n!"+top+"\n") {
			t.Errorf("bundle.Dockerfile copies %s, which .dockerignore keeps out of the build context", c)
		}
	}
}

// TestImageNamesAgree: the capstan-init image make docker-build tags is the
// one the injector injects (inject.InitImageRepository, tagged with the
// version the Makefile stamps into the manager).
func TestImageNamesAgree(t *testing.T) {
	mk := readMakefile(t)
	registry := makeVar("IMAGE_REGISTRY").FindStringSubmatch(mk)
	initImg := makeVar("INIT_IMG").FindStringSubmatch(mk)
	if registry == nil || initImg == nil {
		t.Fatal("no IMAGE_REGISTRY or INIT_IMG in the Makefile")
	}
	got := strings.NewReplacer("$(IMAGE_REGISTRY)", registry[1]).Replace(initImg[1])
	if want := inject.InitImageRepository + ":$(VERSION)"; got != want {
		t.Errorf("make docker-build tags capstan-init %s, the injector injects %s", got, want)
	}
	if !strings.Contains(mk, "GO_LDFLAGS := -X main.version=$(VERSION)") {
		t.Error("the Makefile does not stamp VERSION into the manager (-X main.version)")
	}
}
