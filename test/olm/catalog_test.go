package olm

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

var opmVersion = regexp.MustCompile(`(?m)^OPM_VERSION \?= (\S+)$`)

// opm returns the path of the opm the Makefile builds (bin/opm-<version>).
func opm(t *testing.T) string {
	t.Helper()
	mk, err := os.ReadFile(filepath.Join(root(t), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := opmVersion.FindSubmatch(mk)
	if m == nil {
		t.Fatal("no OPM_VERSION in the Makefile")
	}
	path := filepath.Join(root(t), "bin", "opm-"+string(m[1]))
	if _, err := os.Stat(path); err != nil {
		if testing.Short() {
			t.Skipf("%s missing: run make opm", path)
		}
		t.Fatalf("%s missing: run make opm", path)
	}
	return path
}

func opmValidate(t *testing.T, bin, dir string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(bin, "validate", dir)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestCatalogValidates runs `opm validate` on catalog/: it passes, and a
// copy whose channel names a bundle the catalog lacks fails, so the check
// can fail. The channel has the upgrade edge: every older version upgrades
// to the bundle (skipRange).
func TestCatalogValidates(t *testing.T) {
	bin := opm(t)
	dir := filepath.Join(root(t), "catalog")
	if out, err := opmValidate(t, bin, dir); err != nil {
		t.Fatalf("opm validate catalog: %v\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "capstan", "catalog.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	checkChannel(t, data)
	broken := filepath.Join(t.TempDir(), "catalog")
	if err := os.MkdirAll(filepath.Join(broken, "capstan"), 0o755); err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(data), "- name: capstan.v", "- name: capstan.vmissing", 1)
	if err := os.WriteFile(filepath.Join(broken, "capstan", "catalog.yaml"), []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := opmValidate(t, bin, broken); err == nil {
		t.Errorf("opm validate accepted a channel entry without its bundle:\n%s", out)
	}
}

func checkChannel(t *testing.T, data []byte) {
	t.Helper()
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var ch struct {
			Schema  string `json:"schema"`
			Name    string `json:"name"`
			Entries []struct {
				Name, SkipRange string
			} `json:"entries"`
		}
		if err := yaml.Unmarshal([]byte(doc), &ch); err != nil {
			t.Fatal(err)
		}
		if ch.Schema != "olm.channel" {
			continue
		}
		if len(ch.Entries) != 1 || !strings.HasPrefix(ch.Entries[0].SkipRange, "<") {
			t.Errorf("channel %s entries %+v: want the bundle with a skipRange from every older version", ch.Name, ch.Entries)
		}
		return
	}
	t.Error("the catalog has no channel")
}
