package generate

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/capstanmesh/capstan/internal/envoytest"
	"github.com/capstanmesh/capstan/xds/ir"
)

// TestEnvoyAcceptsGoldens feeds every sidecar golden case to the real Envoy
// (`envoy --mode validate`): its listeners, routes, clusters and endpoints,
// and the SDS secrets, as the static resources of one bootstrap. References
// that a sidecar resolves over ADS are inlined so that Envoy checks what they
// point at too: RDS becomes the listener's inline route_config (with
// validate_clusters, so that Envoy checks that every cluster a route names
// exists), an EDS cluster
// becomes a STATIC cluster with the golden ClusterLoadAssignment as its
// load_assignment, and an SDS reference names a static secret (generated
// from a real certificate and key, which Envoy parses). Every golden route
// configuration and load assignment must be used, or it would go unchecked.
//
// The proxyless gRPC cases (kind GRPC) are not fed to Envoy: they are for
// gRPC clients, whose listeners are API listeners (an HTTP connection
// manager with no address), which an Envoy server does not load, and whose
// feature subset differs from Envoy's; test/xdsclient and the gRPC tests
// check them with real gRPC clients instead.
func TestEnvoyAcceptsGoldens(t *testing.T) {
	envoy := envoytest.Path(t)
	secrets := realSecretsJSON(t)
	sidecars := 0
	for _, dir := range caseDirs(t) {
		c := readCase(t, dir)
		proxy := c.Mesh.ProxyByID(c.Proxy)
		if proxy == nil || proxy.Kind == ir.ProxyGRPC {
			continue
		}
		sidecars++
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			b := staticBootstrap(t, goldenLists(t, dir), c.Proxy, secrets)
			path := filepath.Join(t.TempDir(), "bootstrap.json")
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := envoytest.Validate(t.Context(), envoy, "-c", path); err != nil {
				t.Errorf("Envoy refuses the golden outputs of %s: %v", dir, err)
			}
		})
	}
	if sidecars < 30 {
		t.Errorf("only %d sidecar golden cases validated", sidecars)
	}
}

// fuzzedMeshesForEnvoy is how many random meshes TestEnvoyAcceptsFuzzedMeshes
// generates (Envoy's validation takes about half a second each).
const fuzzedMeshesForEnvoy = 8

// TestEnvoyAcceptsFuzzedMeshes feeds ForProxy's output for random meshes
// (FuzzForProxy's builder, fixed seeds; the models hold user mistakes that
// must come back as per-object errors) to the real Envoy, as
// TestEnvoyAcceptsGoldens does for the golden cases.
func TestEnvoyAcceptsFuzzedMeshes(t *testing.T) {
	envoy := envoytest.Path(t)
	secrets := realSecretsJSON(t)
	rng := mrand.New(mrand.NewPCG(12, 0xe11))
	for i := range fuzzedMeshesForEnvoy {
		data := make([]byte, 256)
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			mesh := (&meshFuzzer{in: slices.Clone(data)}).mesh()
			res, err := ForProxy(mesh, mesh.Proxies[0])
			var errs Errors
			if err != nil && !errors.As(err, &errs) {
				t.Fatalf("ForProxy failed as a whole: %v", err)
			}
			b := staticBootstrap(t, resourceLists(t, res), mesh.Proxies[0].ID, secrets)
			path := filepath.Join(t.TempDir(), "bootstrap.json")
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := envoytest.Validate(t.Context(), envoy, "-c", path); err != nil {
				t.Errorf("Envoy refuses the output for fuzz input %x: %v", data, err)
			}
		})
	}
}

// xdsLists are a proxy's resources as generic JSON (protojson with proto
// field names, as in the goldens).
type xdsLists struct{ listeners, routes, clusters, endpoints []any }

// goldenLists reads a case's golden outputs.
func goldenLists(t *testing.T, dir string) xdsLists {
	t.Helper()
	return xdsLists{
		listeners: readGoldenList(t, dir, "listeners.yaml"),
		routes:    readGoldenList(t, dir, "routes.yaml"),
		clusters:  readGoldenList(t, dir, "clusters.yaml"),
		endpoints: readGoldenList(t, dir, "endpoints.yaml"),
	}
}

// staticBootstrap is a bootstrap (JSON) with a proxy's resources as its
// static resources, references inlined (see TestEnvoyAcceptsGoldens).
func staticBootstrap(t *testing.T, lists xdsLists, proxyID string, secrets []any) []byte {
	t.Helper()
	in := inliner{
		routes:    byName(t, lists.routes, "name"),
		endpoints: byName(t, lists.endpoints, "cluster_name"),
		used:      map[string]bool{},
	}
	listeners, clusters := lists.listeners, lists.clusters
	for _, l := range listeners {
		in.inline(t, l)
	}
	for _, c := range clusters {
		in.inline(t, c)
		in.staticCluster(t, c.(map[string]any))
	}
	for name := range in.routes {
		if !in.used["route "+name] {
			t.Errorf("route configuration %q: no listener uses it", name)
		}
	}
	for name := range in.endpoints {
		if !in.used["endpoints "+name] {
			t.Errorf("load assignment %q: no EDS cluster uses it", name)
		}
	}
	b, err := json.Marshal(map[string]any{
		"node": map[string]any{"id": proxyID, "cluster": "golden"},
		"static_resources": map[string]any{
			"listeners": listeners,
			"clusters":  clusters,
			"secrets":   secrets,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// inliner replaces a golden resource's xDS references with what they name.
type inliner struct {
	routes, endpoints map[string]any
	used              map[string]bool
}

// inline walks a resource (protojson as generic JSON): an `rds` reference
// becomes the inline `route_config` it names, and an SDS secret reference
// loses its `sds_config`, so that it names a static secret.
func (in *inliner) inline(t *testing.T, v any) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		if rds, ok := v["rds"].(map[string]any); ok {
			name, _ := rds["route_config_name"].(string)
			rc, ok := in.routes[name]
			if !ok {
				t.Fatalf("rds names route configuration %q, which is not in routes.yaml", name)
			}
			in.used["route "+name] = true
			delete(v, "rds")
			v["route_config"] = withClusterCheck(rc)
		}
		if _, ok := v["sds_config"]; ok {
			if _, named := v["name"]; named {
				delete(v, "sds_config")
			}
		}
		for _, child := range v {
			in.inline(t, child)
		}
	case []any:
		for _, child := range v {
			in.inline(t, child)
		}
	}
}

// withClusterCheck is a copy of a route configuration with validate_clusters
// set: the generator leaves it off for RDS, where routes may arrive before
// their clusters; here every cluster is in the bootstrap, so Envoy can check
// that each one a route names exists.
func withClusterCheck(rc any) any {
	out := map[string]any{}
	for k, v := range rc.(map[string]any) {
		out[k] = v
	}
	out["validate_clusters"] = true
	return out
}

// staticCluster turns an EDS cluster into a STATIC one whose load_assignment
// is the golden ClusterLoadAssignment for it.
func (in *inliner) staticCluster(t *testing.T, c map[string]any) {
	t.Helper()
	if c["type"] != "EDS" {
		return
	}
	name, _ := c["name"].(string)
	if eds, ok := c["eds_cluster_config"].(map[string]any); ok {
		if sn, ok := eds["service_name"].(string); ok && sn != "" {
			name = sn
		}
	}
	cla, ok := in.endpoints[name]
	if !ok {
		t.Fatalf("EDS cluster %q: no load assignment %q in endpoints.yaml", c["name"], name)
	}
	in.used["endpoints "+name] = true
	delete(c, "eds_cluster_config")
	c["type"] = "STATIC"
	c["load_assignment"] = cla
}

// resourceLists converts generated resources as the goldens render them.
func resourceLists(t *testing.T, res *Resources) xdsLists {
	t.Helper()
	return xdsLists{
		listeners: jsonList(t, res.Listeners),
		routes:    jsonList(t, res.Routes),
		clusters:  jsonList(t, res.Clusters),
		endpoints: jsonList(t, res.Endpoints),
	}
}

func jsonList[T proto.Message](t *testing.T, list []T) []any {
	t.Helper()
	out := make([]any, len(list))
	for i, m := range list {
		b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func readGoldenList(t *testing.T, dir, file string) []any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		t.Fatalf("%s/%s: %v", dir, file, err)
	}
	var list []any
	if err := json.Unmarshal(j, &list); err != nil {
		t.Fatalf("%s/%s: %v", dir, file, err)
	}
	return list
}

// byName indexes resources by a string field.
func byName(t *testing.T, list []any, field string) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, r := range list {
		name, _ := r.(map[string]any)[field].(string)
		if _, dup := out[name]; dup || name == "" {
			t.Fatalf("resource with %s %q repeated or empty", field, name)
		}
		out[name] = r
	}
	return out
}

// realSecretsJSON is Secrets' output for a real CA and workload certificate,
// as generic JSON: Envoy parses the certificate, key and bundle of a static secret.
func realSecretsJSON(t *testing.T) []any {
	t.Helper()
	secrets, err := Secrets(realIdentitySecrets(t))
	if err != nil {
		t.Fatal(err)
	}
	return jsonList(t, secrets)
}

// realIdentitySecrets is a throw-away root CA and a SPIFFE workload
// certificate it signed, made for this test run.
func realIdentitySecrets(t *testing.T) IdentitySecrets {
	t.Helper()
	caKey := newECKey(t)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Organization: []string{"capstan test"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leafKey := newECKey(t)
	id, err := url.Parse(ir.SpiffeID(testTrustDomain, testProxyNS, "web"))
	if err != nil {
		t.Fatal(err)
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2),
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		URIs:         []*url.URL{id},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, ca, leafKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	return IdentitySecrets{
		ChainPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		KeyPEM:    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		BundlePEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
	}
}

func newECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
