package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInitRootFS assembles the capstan-init image's root file system as the
// Dockerfile does (hack/image/iptables-rootfs.sh, from this machine's
// Debian iptables) with a static capstan-init, and runs it in a chroot in a
// fresh network namespace: with no shell and nothing else in it, it installs
// its rules with the nft backend (the default) and with the legacy one.
func TestInitRootFS(t *testing.T) {
	for _, need := range []string{"unshare", "chroot", "xtables-nft-multi", "xtables-legacy-multi"} {
		if _, err := exec.LookPath(need); err != nil || os.Geteuid() != 0 {
			if testing.Short() {
				t.Skipf("needs root and %s (make dataplane-deps installs iptables)", need)
			}
			t.Fatalf("needs root and %s: %v (make dataplane-deps installs iptables)", need, err)
		}
	}
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	run(t, "", nil, repoFile(t, "hack/image/iptables-rootfs.sh"), rootfs)
	run(t, repoFile(t, "."), []string{"CGO_ENABLED=0"}, "go", "build", "-o", filepath.Join(rootfs, "capstan-init"), "./cmd/capstan-init")
	for _, shell := range []string{"bin/sh", "usr/bin/sh", "bin/bash"} {
		if _, err := os.Lstat(filepath.Join(rootfs, shell)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the root file system has /%s", shell)
		}
	}
	// One network namespace per backend, gone when unshare exits.
	for _, tc := range []struct{ restore, save string }{
		{"iptables-restore", "iptables-nft-save"},
		{"iptables-legacy-restore", "iptables-legacy-save"},
	} {
		script := "chroot " + rootfs + " /capstan-init --pod-ips=10.1.0.5 --iptables-restore=" + tc.restore + " >/dev/null && " +
			"chroot " + rootfs + " /usr/sbin/" + tc.save + " -t nat"
		out := run(t, "", []string{"PATH=/usr/sbin"}, "unshare", "--net", "/bin/sh", "-c", script)
		if !strings.Contains(out, "-j REDIRECT --to-ports 15001") || !strings.Contains(out, "--uid-owner 1337") {
			t.Errorf("%s in the image's root file system left the nat table:\n%s", tc.restore, out)
		}
	}
}

func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v: %s", name, args, err, stderr.String())
	}
	return string(out)
}

// ociConfig is the part of an OCI image config the test reads.
type ociConfig struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Config       struct {
		Entrypoint []string          `json:"Entrypoint"`
		User       string            `json:"User"`
		Labels     map[string]string `json:"Labels"`
	} `json:"config"`
}

type descriptor struct {
	Digest      string            `json:"digest"`
	Annotations map[string]string `json:"annotations"`
}

// TestImageLayout runs the tool `make image` runs (hack/tools/image) on
// stand-in binaries and reads the OCI layout back with the standard library:
// the config starts /manager as 65532:65532 with the version label, the one
// layer holds /manager and /capstanctl, and the same input gives the same
// digest.
func TestImageLayout(t *testing.T) {
	tmp := t.TempDir()
	tool := filepath.Join(tmp, "capstan-image")
	run(t, repoFile(t, "hack/tools/image"), nil, "go", "build", "-o", tool, ".")
	want := map[string][]byte{"manager": []byte("stand-in for the static manager\n"), "capstanctl": []byte("stand-in for the CLI\n")}
	for name, content := range want {
		if err := os.WriteFile(filepath.Join(tmp, name), content, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	digests := map[string]bool{}
	for _, out := range []string{"a", "b"} {
		layout := filepath.Join(tmp, out)
		run(t, "", nil, tool, "-binary", filepath.Join(tmp, "manager"), "-cli", filepath.Join(tmp, "capstanctl"),
			"-out", layout, "-tag", "example.test/capstan-manager:1.2.3", "-version", "1.2.3", "-arch", "amd64")
		digests[checkLayout(t, layout, want)] = true
		if _, err := os.Stat(layout + ".tar"); err != nil {
			t.Errorf("no tarball beside the layout: %v", err)
		}
	}
	if len(digests) != 1 {
		t.Errorf("the same binary gave the digests %v", digests)
	}
}

func checkLayout(t *testing.T, dir string, files map[string][]byte) string {
	t.Helper()
	var index struct{ Manifests []descriptor }
	readJSON(t, filepath.Join(dir, "index.json"), &index)
	if len(index.Manifests) != 1 || index.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "example.test/capstan-manager:1.2.3" {
		t.Fatalf("index %+v, want one manifest named by its tag", index)
	}
	var manifest struct {
		Config descriptor
		Layers []descriptor
	}
	readJSON(t, blob(dir, index.Manifests[0].Digest), &manifest)
	var cfg ociConfig
	readJSON(t, blob(dir, manifest.Config.Digest), &cfg)
	c := cfg.Config
	if len(c.Entrypoint) != 1 || c.Entrypoint[0] != "/manager" || c.User != "65532:65532" || cfg.OS != "linux" || cfg.Architecture != "amd64" {
		t.Errorf("config %+v: want entrypoint [/manager], user 65532:65532, linux/amd64", cfg)
	}
	if c.Labels["org.opencontainers.image.version"] != "1.2.3" || c.Labels["org.opencontainers.image.source"] == "" {
		t.Errorf("labels %v: want the version and the source", c.Labels)
	}
	if len(manifest.Layers) != 1 {
		t.Fatalf("%d layers, want 1", len(manifest.Layers))
	}
	checkLayer(t, blob(dir, manifest.Layers[0].Digest), files)
	return index.Manifests[0].Digest
}

func checkLayer(t *testing.T, path string, files map[string][]byte) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	seen := 0
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		want, ok := files[hdr.Name]
		if !ok || hdr.Mode != 0o755 || hdr.Uid != 0 || !bytes.Equal(data, want) {
			t.Errorf("layer entry %s mode %o uid %d (%d bytes): want one of %d binaries, 0755, root, its content", hdr.Name, hdr.Mode, hdr.Uid, len(data), len(files))
		}
		seen++
	}
	if seen != len(files) {
		t.Errorf("the layer holds %d entries, want the %d binaries alone", seen, len(files))
	}
}

func blob(dir, digest string) string {
	algo, hex, _ := strings.Cut(digest, ":")
	return filepath.Join(dir, "blobs", algo, hex)
}

func readJSON(t *testing.T, path string, into any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
