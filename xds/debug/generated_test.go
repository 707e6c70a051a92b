package debug

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/capstanmesh/capstan/test/debugfixture"
	"github.com/capstanmesh/capstan/xds/debugapi"
	"github.com/capstanmesh/capstan/xds/generate"
	"github.com/capstanmesh/capstan/xds/ir"
	"github.com/capstanmesh/capstan/xds/server"
)

// Every case of xds/generate's goldens, with the SDS secrets the runner
// adds, renders for each type: each resource's Envoy JSON (every Any inside
// resolves), one summary cell per column, and no private key anywhere.
func TestRendersGeneratedConfig(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("..", "generate", "testdata", "*", "mesh.yaml"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no generate cases: %v", err)
	}
	keys := debugfixture.New(t, "spiffe://cluster.local/ns/default/sa/web")
	secrets, err := generate.Secrets(generate.IdentitySecrets{ChainPEM: keys.CertPEM, KeyPEM: keys.KeyPEM, BundlePEM: keys.CertPEM})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range dirs {
		t.Run(filepath.Base(filepath.Dir(path)), func(t *testing.T) {
			res := generateCase(t, path)
			res.Secrets = secrets
			cfg := server.PublishedConfig{Resources: res.ByType()}
			for name, typeURL := range typeURLs {
				out, err := renderConfig("node", name, typeURL, cfg)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				for _, r := range out.Resources {
					if len(r.Summary) != len(out.Columns) || !json.Valid(r.Config) {
						t.Errorf("%s %s: summary %q for columns %q", name, r.Name, r.Summary, out.Columns)
					}
				}
				if name == debugapi.TypeSecrets && len(out.Resources) != 2 {
					t.Errorf("secrets: %d, want 2", len(out.Resources))
				}
				b, err := json.Marshal(out)
				if err != nil {
					t.Fatal(err)
				}
				keys.CheckNoKeyMaterial(t, name, b)
			}
		})
	}
}

func generateCase(t *testing.T, path string) *generate.Resources {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Proxy string  `json:"proxy"`
		Mesh  ir.Mesh `json:"mesh"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	proxy := c.Mesh.ProxyByID(c.Proxy)
	if proxy == nil {
		t.Fatalf("proxy %q is not in the mesh", c.Proxy)
	}
	res, err := generate.For(&c.Mesh, proxy)
	if res == nil {
		t.Fatalf("generate: %v", err)
	}
	return res
}
