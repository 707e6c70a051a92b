// Package layering checks that Capstan's imports point down only, counting
// what every package reaches transitively, not just what it imports
// directly (depguard in .golangci.yml sees only direct imports). The rules
// are a table (Rules); Check applies them to an import graph, which Load
// reads from one `go list -deps -json` call.
package layering

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
)

// Module is Capstan's module path.
const Module = "github.com/capstanmesh/capstan"

// Package is one node of the import graph: a package and what it imports.
type Package struct {
	ImportPath string
	Imports    []string
	// Standard is set for the standard library's packages.
	Standard bool
}

// Rule forbids what the packages it covers may reach through any chain of
// imports. Patterns are import paths; a trailing "/..." also matches every
// package below (as in `go list`).
type Rule struct {
	// Name says what the rule protects, for the report.
	Name string
	// Packages are the packages the rule covers, except those in Except.
	Packages []string
	Except   []string
	// Deny are the packages they must not reach.
	Deny []string
	// StdlibOnly, when set, forbids reaching anything but the standard
	// library and the covered packages themselves.
	StdlibOnly bool
}

// m returns the module's package pattern for path.
func m(path string) string { return Module + "/" + path }

// Rules are Capstan's layers, top to bottom: cmd and internal/app compose
// everything; the controllers talk to Kubernetes; translate and generate are
// pure stages over the ir model; the server holds the gRPC state. See
// docs/contributing.md.
var Rules = []Rule{
	{Name: "controllers never reach Envoy or the xDS server",
		Packages: []string{m("controllers/...")},
		Deny:     []string{"github.com/envoyproxy/...", m("xds/server/..."), m("xds/generate/..."), m("xds/runner/..."), m("internal/app/...")}},
	{Name: "the ir model is plain Go",
		Packages: []string{m("xds/ir/...")}, StdlibOnly: true},
	{Name: "the auth contract is plain Go",
		Packages: []string{m("xds/auth")}, StdlibOnly: true},
	{Name: "the debug endpoint's wire format is plain Go",
		Packages: []string{m("xds/debugapi")}, StdlibOnly: true},
	{Name: "the debug endpoint reads the xDS server, no API objects or controllers",
		Packages: []string{m("xds/debug")},
		Deny:     []string{m("api/..."), m("controllers/..."), m("webhook/..."), m("xds/translate/..."), m("internal/app/...")}},
	{Name: "generation reads the ir model, not Kubernetes",
		Packages: []string{m("xds/generate/...")},
		Deny:     []string{"k8s.io/client-go/...", "sigs.k8s.io/controller-runtime/...", m("api/..."), m("controllers/...")}},
	{Name: "translation is pure: no clients, no Envoy, no webhook",
		Packages: []string{m("xds/translate/...")},
		Deny: []string{"k8s.io/client-go/...", "sigs.k8s.io/controller-runtime/...", "github.com/envoyproxy/...",
			m("webhook/..."), m("controllers/..."), m("xds/generate/..."), m("xds/server/...")}},
	{Name: "the API is the bottom layer",
		Packages: []string{m("api/...")},
		Deny:     []string{m("controllers/..."), m("xds/..."), m("webhook/..."), m("pki/..."), "github.com/envoyproxy/...", "sigs.k8s.io/controller-runtime/..."}},
	{Name: "the xDS server knows no controllers and no API objects",
		Packages: []string{m("xds/server/...")},
		Deny:     []string{m("controllers/..."), m("api/..."), m("webhook/..."), m("xds/translate/..."), m("internal/meshmetrics/...")}},
	{Name: "the runner is composed, it composes nothing",
		Packages: []string{m("xds/runner/...")},
		Deny:     []string{m("controllers/..."), m("webhook/..."), m("internal/app/...")}},
	{Name: "the webhooks never reach the controllers, Envoy or the xDS pipeline",
		Packages: []string{m("webhook/...")},
		Deny:     []string{"github.com/envoyproxy/...", m("controllers/..."), m("xds/server/..."), m("xds/runner/..."), m("xds/generate/..."), m("internal/app/...")}},
	{Name: "the injector is pure",
		Packages: []string{m("webhook/inject/...")},
		Deny:     []string{"k8s.io/client-go/...", "sigs.k8s.io/controller-runtime/...", m("controllers/..."), m("xds/translate/...")}},
	{Name: "pki holds identities and CAs, no clients",
		Packages: []string{m("pki"), m("pki/builtin/...")},
		Deny:     []string{"k8s.io/client-go/...", "sigs.k8s.io/controller-runtime/...", "github.com/envoyproxy/...", m("controllers/..."), m("xds/...")}},
	{Name: "the CLI never reaches Envoy or the xDS pipeline",
		Packages: []string{m("cli/..."), m("cmd/capstanctl/...")},
		Deny: []string{"github.com/envoyproxy/...", m("xds/server/..."), m("xds/generate/..."), m("xds/runner/..."),
			m("xds/translate/..."), m("xds/debug"), m("internal/app/...")}},
	{Name: "netpod plays the kubelet: no client, no operator code, no Envoy types",
		Packages: []string{m("internal/netpod/...")},
		Deny: []string{"k8s.io/client-go/...", "sigs.k8s.io/controller-runtime/...", "github.com/envoyproxy/...",
			m("controllers/..."), m("webhook/..."), m("xds/..."), m("internal/app/...")}},
	{Name: "only cmd and tests compose the operator",
		Packages: []string{m("...")},
		Except:   []string{m("cmd/..."), m("test/..."), m("hack/..."), m("internal/app/...")},
		Deny:     []string{m("internal/app/...")}},
}

// Violation is a covered package that reaches a forbidden one; Chain is
// the import path from the first to the second.
type Violation struct {
	Rule  string
	Chain []string
}

func (v Violation) String() string {
	return v.Rule + ": " + strings.Join(v.Chain, " -> ")
}

// matches reports whether path matches pattern (an import path, or one
// ending in "/..." for it and everything below).
func matches(pattern, path string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == base || strings.HasPrefix(path, base+"/")
	}
	return path == pattern
}

func matchesAny(patterns []string, path string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return matches(p, path) })
}

// covers reports whether the rule applies to path.
func (r Rule) covers(path string) bool {
	return matchesAny(r.Packages, path) && !matchesAny(r.Except, path)
}

// forbids reports whether a package covered by r may not reach p.
func (r Rule) forbids(p *Package) bool {
	if r.StdlibOnly {
		return !p.Standard && !r.covers(p.ImportPath)
	}
	return matchesAny(r.Deny, p.ImportPath)
}

// Check applies rules to the graph and returns every violation: for each
// covered package, the forbidden packages it reaches, each with the
// shortest import chain to it. Packages missing from the graph are skipped.
func Check(graph []Package, rules []Rule) []Violation {
	byPath := make(map[string]*Package, len(graph))
	for i := range graph {
		byPath[graph[i].ImportPath] = &graph[i]
	}
	var out []Violation
	for _, r := range rules {
		for i := range graph {
			if graph[i].Standard || !r.covers(graph[i].ImportPath) {
				continue
			}
			for _, chain := range forbiddenChains(byPath, graph[i].ImportPath, r) {
				out = append(out, Violation{Rule: r.Name, Chain: chain})
			}
		}
	}
	return out
}

// forbiddenChains walks the graph breadth first from start and returns
// the chain to each forbidden package reached, without walking past one.
func forbiddenChains(byPath map[string]*Package, start string, r Rule) [][]string {
	parent := map[string]string{start: ""}
	queue := []string{start}
	var chains [][]string
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, imp := range byPath[cur].Imports {
			next, ok := byPath[imp]
			if _, seen := parent[imp]; seen || !ok {
				continue
			}
			parent[imp] = cur
			if r.forbids(next) {
				chains = append(chains, chainTo(parent, imp))
				continue
			}
			queue = append(queue, imp)
		}
	}
	return chains
}

func chainTo(parent map[string]string, end string) []string {
	var chain []string
	for p := end; p != ""; p = parent[p] {
		chain = append(chain, p)
	}
	slices.Reverse(chain)
	return chain
}

// Load reads the import graph of the module in dir and all its
// dependencies, with one `go list -deps -json` call.
func Load(dir string) ([]Package, error) {
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Imports,Standard", "./...")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w: %s", err, stderr.String())
	}
	return decode(bytes.NewReader(out))
}

// decode reads go list's stream of JSON objects.
func decode(r io.Reader) ([]Package, error) {
	var graph []Package
	dec := json.NewDecoder(r)
	for {
		var p Package
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			return graph, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decoding go list output: %w", err)
		}
		graph = append(graph, p)
	}
}
