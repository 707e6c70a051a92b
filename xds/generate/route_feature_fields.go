package generate

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/capstanmesh/capstan/xds/ir"
)

// routeFieldIndex resolves each route feature's field path to its index path
// in ir.HTTPRoute once; a path that names no field panics at start-up (and
// fails every test).
var routeFieldIndex = mustIndexRouteFields(routeFeatures)

func mustIndexRouteFields(features []routeFeature) map[string][]int {
	out := map[string][]int{}
	for _, f := range features {
		for _, fld := range f.fields() {
			if fld.path == "" {
				continue
			}
			idx, err := jsonFieldIndex(reflect.TypeFor[ir.HTTPRoute](), fld.path)
			if err != nil {
				panic(fmt.Sprintf("route feature %s: %v", f.name(), err))
			}
			out[fld.path] = idx
		}
	}
	return out
}

// jsonFieldIndex is the index path of the field at a dotted JSON path in t,
// through pointers to structs.
func jsonFieldIndex(t reflect.Type, path string) ([]int, error) {
	var idx []int
	for name := range strings.SplitSeq(path, ".") {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return nil, fmt.Errorf("field path %q: %s is not a struct", path, t)
		}
		f, ok := fieldByJSONName(t, name)
		if !ok {
			return nil, fmt.Errorf("field path %q: %s has no field %q", path, t, name)
		}
		idx = append(idx, f.Index...)
		t = f.Type
	}
	return idx, nil
}

// fieldByJSONName finds the field of struct t whose JSON name is name.
func fieldByJSONName(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if jsonName(f) == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// jsonName is a struct field's name in JSON.
func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		return f.Name
	}
	return name
}

// routeFieldSet says whether the rule sets the field at path: a nil pointer
// on the way means unset, and so does the field's zero value.
func routeFieldSet(in *ir.HTTPRoute, path string) bool {
	idx, ok := routeFieldIndex[path]
	if !ok || in == nil {
		return false
	}
	v := reflect.ValueOf(in).Elem()
	for _, i := range idx {
		if v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return false
			}
			v = v.Elem()
		}
		v = v.Field(i)
	}
	return !v.IsZero()
}
