package integration

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/controllers"
	"github.com/capstanmesh/capstan/test/envtest"
)

// table is one table printed by kubectl get: its header and rows, cut into
// cells at the header's column starts (empty cells stay empty).
type table struct {
	header []string
	rows   [][]string
}

// kubectl runs the kubectl built with the API server against the test
// control plane.
func kubectl(args ...string) (string, error) {
	cmd := exec.Command(env.Kubectl, append([]string{"--kubeconfig", env.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// parseTables splits kubectl's output (one table per resource type,
// separated by blank lines) into tables.
func parseTables(out string) []table {
	var tables []table
	for _, block := range strings.Split(strings.TrimSpace(out), "\n\n") {
		lines := strings.Split(strings.TrimSpace(block), "\n")
		starts := columnStarts(lines[0])
		t := table{header: cells(lines[0], starts)}
		for _, l := range lines[1:] {
			t.rows = append(t.rows, cells(l, starts))
		}
		tables = append(tables, t)
	}
	return tables
}

// columnStarts returns where each header word begins.
func columnStarts(header string) []int {
	var starts []int
	for i := range header {
		if header[i] != ' ' && (i == 0 || header[i-1] == ' ') {
			starts = append(starts, i)
		}
	}
	return starts
}

// cells cuts a line at the column starts and trims each cell.
func cells(line string, starts []int) []string {
	out := make([]string, len(starts))
	for i, start := range starts {
		end := len(line)
		if i+1 < len(starts) {
			end = min(starts[i+1], len(line))
		}
		if start < end {
			out[i] = strings.TrimSpace(line[start:end])
		}
	}
	return out
}

// row finds the row whose first cells are the given ones.
func (t table) row(prefix ...string) ([]string, error) {
	for _, r := range t.rows {
		if slices.Equal(r[:len(prefix)], prefix) {
			return r, nil
		}
	}
	return nil, fmt.Errorf("no row starting with %v in %v", prefix, t.rows)
}

// TestKubectlColumns checks what `kubectl get` prints for every kind once
// the reconcilers have accepted the objects.
func TestKubectlColumns(t *testing.T) {
	ns := env.NewNamespace(t)
	env.StartManager(t, controllers.SetupWithManager, ns)
	ctx := context.Background()
	createMesh(t, &meshv1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: meshv1alpha1.MeshName}})
	for _, obj := range []struct{ kind, name, spec string }{
		{"MeshRoute", "reviews", "hosts: [reviews, reviews.example.com]\nhttp: [{route: [{host: reviews}]}]"},
		{"DestinationPolicy", "reviews", "host: reviews\nsubsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]"},
		{"PeerAuthentication", "default", "mtls: {mode: STRICT}"},
	} {
		if err := env.Client.Create(ctx, fromYAML(t, obj.kind, ns, obj.name, obj.spec)); err != nil {
			t.Fatal(err)
		}
	}

	want := []struct {
		header []string
		row    []string
	}{
		{[]string{"NAMESPACE", "NAME", "HOSTS", "ACCEPTED", "PROGRAMMED", "PROXIES", "AGE"},
			[]string{ns, "meshroute.mesh.capstan.dev/reviews", `["reviews","reviews.example.com"]`, "True", "", ""}},
		// The API server prints only the first value a printer column's
		// JSONPath finds, so SUBSETS shows the first subset's name.
		{[]string{"NAMESPACE", "NAME", "HOST", "SUBSETS", "ACCEPTED", "PROGRAMMED", "PROXIES", "AGE"},
			[]string{ns, "destinationpolicy.mesh.capstan.dev/reviews", "reviews", "v1", "True", "", ""}},
		{[]string{"NAMESPACE", "NAME", "MODE", "ACCEPTED", "PROGRAMMED", "PROXIES", "AGE"},
			[]string{ns, "peerauthentication.mesh.capstan.dev/default", "STRICT", "True", "", ""}},
	}
	envtest.Eventually(t, settle, func() error {
		out, err := kubectl("get", "meshroutes,destinationpolicies,peerauthentications", "-A")
		if err != nil {
			return err
		}
		tables := parseTables(out)
		if len(tables) != len(want) {
			return fmt.Errorf("got %d tables, want %d:\n%s", len(tables), len(want), out)
		}
		for i, w := range want {
			if !slices.Equal(tables[i].header, w.header) {
				return fmt.Errorf("header %v, want %v", tables[i].header, w.header)
			}
			r, err := tables[i].row(ns, w.row[1])
			if err != nil {
				return err
			}
			if !slices.Equal(r[:len(w.row)], w.row) || r[len(r)-1] == "" {
				return fmt.Errorf("row %q, want it to start with %q and end with an AGE", r, w.row)
			}
		}
		return nil
	})

	envtest.Eventually(t, settle, func() error {
		out, err := kubectl("get", "meshes")
		if err != nil {
			return err
		}
		tables := parseTables(out)
		wantHeader := []string{"NAME", "TRUST-DOMAIN", "MTLS", "CA", "READY", "AGE"}
		if len(tables) != 1 || !slices.Equal(tables[0].header, wantHeader) {
			return fmt.Errorf("got\n%s\nwant the header %v", out, wantHeader)
		}
		r, err := tables[0].row("default", "cluster.local", "PERMISSIVE", "BuiltIn", "True")
		if err != nil {
			return err
		}
		if r[len(r)-1] == "" {
			return fmt.Errorf("row %v has no AGE", r)
		}
		return nil
	})
}
