package generate

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/capstanmesh/capstan/internal/golden"
	"github.com/capstanmesh/capstan/xds/ir"
)

// TestEveryRouteFieldHasAFeature fails when a field of ir.HTTPRoute, or of a
// struct inside it, is handled by no route feature and is not structural:
// a new rule field needs a feature (route_feature_*.go) in routeFeatures.
func TestEveryRouteFieldHasAFeature(t *testing.T) {
	for _, path := range unhandledRouteFields(routeFeatures) {
		t.Errorf("ir.HTTPRoute field %s is handled by no route feature: add one to routeFeatures (route_feature.go), "+
			"or list the field in structuralRouteFields if every rule has it", path)
	}
}

// TestDroppingAFeatureLeavesItsFieldsUnhandled shows that
// TestEveryRouteFieldHasAFeature catches a feature missing from the list.
func TestDroppingAFeatureLeavesItsFieldsUnhandled(t *testing.T) {
	for i, f := range routeFeatures {
		own := featurePaths(f)
		if len(own) == 0 {
			continue // reads no rule field (the hash policy)
		}
		without := slices.Delete(slices.Clone(routeFeatures), i, i+1)
		got := unhandledRouteFields(without)
		if len(got) == 0 {
			t.Errorf("without the %s feature no field is unhandled", f.name())
		}
		for _, path := range got {
			if !slices.ContainsFunc(own, func(p string) bool { return path == p || strings.HasPrefix(path, p+".") }) {
				t.Errorf("without the %s feature, %s is unhandled: not one of its fields %v", f.name(), path, own)
			}
		}
	}
}

// TestRouteFeaturesAreDistinct: each feature has its own name and fields,
// and says something about each of its fields for the docs.
func TestRouteFeaturesAreDistinct(t *testing.T) {
	names, paths := map[string]bool{}, map[string]string{}
	for _, f := range routeFeatures {
		if f.name() == "" || names[f.name()] {
			t.Errorf("route feature %T: name %q is empty or taken", f, f.name())
		}
		names[f.name()] = true
		if len(f.fields()) == 0 {
			t.Errorf("route feature %s lists no field: the docs would not mention it", f.name())
		}
		for _, fld := range f.fields() {
			if fld.path == "" && fld.api == "" || fld.note == "" && fld.grpc != grpcSent {
				t.Errorf("route feature %s: field %+v needs a path or an api name, and a note unless it is sent as is", f.name(), fld)
			}
			if other, taken := paths[fld.path]; fld.path != "" && taken {
				t.Errorf("field %s is handled by both %s and %s", fld.path, other, f.name())
			}
			paths[fld.path] = f.name()
		}
	}
}

// TestRouteFieldSet checks the reflection that derives gRPC's warnings:
// a field is set when it is not its zero value and nothing on its way is nil.
func TestRouteFieldSet(t *testing.T) {
	zero := ir.Duration(0)
	in := &ir.HTTPRoute{Retries: &ir.Retries{PerTryTimeout: &zero}, Mirror: &ir.Mirror{}}
	for path, want := range map[string]bool{
		"retries.perTryTimeout": true, "retries.attempts": false, "retries.budget": false,
		"mirror": true, "fault.delay": false, "timeout": false, "no.such.field": false,
	} {
		if got := routeFieldSet(in, path); got != want {
			t.Errorf("routeFieldSet(%s) = %v, want %v", path, got, want)
		}
	}
}

// TestProxylessGRPCDocTable: docs/proxyless-grpc.md's table of rule fields
// is rendered from routeFeatures; -update rewrites it.
func TestProxylessGRPCDocTable(t *testing.T) {
	const path = "../../docs/proxyless-grpc.md"
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := replaceBetween(doc, docTableBegin, docTableEnd, renderGRPCSupportTable(routeFeatures))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	golden.Check(t, path, got)
}

// TestFuzzModelSetsEveryRouteFeatureField fails when FuzzForProxy's model
// builder (meshFuzzer) never sets a field that a route feature handles: a
// new feature needs its builder too.
func TestFuzzModelSetsEveryRouteFeatureField(t *testing.T) {
	seen := map[string]bool{}
	rng := rand.New(rand.NewPCG(13, 4))
	for range 300 {
		data := make([]byte, 512)
		for i := range data {
			data[i] = byte(rng.UintN(256))
		}
		for _, s := range (&meshFuzzer{in: data}).mesh().Services {
			for _, r := range s.Routes {
				markSetFields(seen, r)
			}
		}
	}
	for _, path := range RouteFeatureFields() {
		if !seen[path] {
			t.Errorf("meshFuzzer (fuzz_test.go) never sets route field %s: build it in route or decorate", path)
		}
	}
}

func markSetFields(seen map[string]bool, r *ir.HTTPRoute) {
	for _, path := range RouteFeatureFields() {
		if routeFieldSet(r, path) {
			seen[path] = true
		}
	}
}

// unhandledRouteFields are the fields of ir.HTTPRoute, and of the structs
// inside it, that none of features handles and that are not structural.
func unhandledRouteFields(features []routeFeature) []string {
	handled := map[string]bool{}
	for _, p := range structuralRouteFields {
		handled[p] = true
	}
	for _, f := range features {
		for _, p := range featurePaths(f) {
			handled[p] = true
		}
	}
	return unhandledFields(reflect.TypeFor[ir.HTTPRoute](), "", handled)
}

// unhandledFields walks t's fields: a handled field covers what is inside
// it; an unhandled struct is looked into; an unhandled leaf is returned.
func unhandledFields(t reflect.Type, prefix string, handled map[string]bool) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		path := jsonName(f)
		if prefix != "" {
			path = prefix + "." + path
		}
		switch inner := structInside(f.Type); {
		case handled[path]:
		case inner != nil:
			out = append(out, unhandledFields(inner, path, handled)...)
		default:
			out = append(out, path)
		}
	}
	return out
}

// structInside is the struct type t is, points to or lists, or nil.
func structInside(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	return t
}

func featurePaths(f routeFeature) []string {
	var out []string
	for _, fld := range f.fields() {
		if fld.path != "" {
			out = append(out, fld.path)
		}
	}
	return out
}

const (
	docTableBegin = "<!-- BEGIN route features: generated from xds/generate routeFeatures; go test ./xds/generate -run TestProxylessGRPCDocTable -update -->\n"
	docTableEnd   = "<!-- END route features -->\n"
)

// grpcSupportWords say a field's support in the docs.
var grpcSupportWords = map[grpcSupport]string{
	grpcSent:       "✔ sent",
	grpcAdapted:    "✔ sent in gRPC's terms",
	grpcNotSent:    "✘ not sent (warning)",
	grpcFailsCalls: "✘ fails the calls (warning)",
}

// renderGRPCSupportTable is the Markdown table of every feature's fields and
// their support by proxyless gRPC clients, in feature order.
func renderGRPCSupportTable(features []routeFeature) string {
	var b strings.Builder
	b.WriteString("| MeshRoute rule field | feature | proxyless gRPC clients | how, or why not |\n| --- | --- | --- | --- |\n")
	for _, f := range features {
		for _, fld := range f.fields() {
			name := fld.api
			if name == "" {
				name = fld.path
			}
			if !strings.HasPrefix(name, "`") {
				name = "`" + name + "`"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", name, f.name(), grpcSupportWords[fld.grpc], fld.note)
		}
	}
	return b.String()
}

// replaceBetween replaces what lies between the begin and end lines of doc.
func replaceBetween(doc []byte, begin, end, body string) ([]byte, error) {
	i := bytes.Index(doc, []byte(begin))
	j := bytes.Index(doc, []byte(end))
	if i < 0 || j < i {
		return nil, fmt.Errorf("no %q line followed by %q", strings.TrimSpace(begin), strings.TrimSpace(end))
	}
	out := slices.Concat(doc[:i+len(begin)], []byte(body), doc[j:])
	return out, nil
}
