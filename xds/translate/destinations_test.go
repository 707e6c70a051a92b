package translate

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/capstanmesh/capstan/xds/ir"
)

func TestNormaliseWeights(t *testing.T) {
	tests := []struct {
		name    string
		weights []int64
		want    []uint32 // nil: the rule is dropped
	}{
		{"single destination gets everything", []int64{0}, []uint32{100}},
		{"already 100", []int64{90, 10}, []uint32{90, 10}},
		{"one of three dropped", []int64{50, 30}, []uint32{63, 37}},
		{"thirds: ties go to the earlier", []int64{1, 1, 1}, []uint32{34, 33, 33}},
		{"zero weight kept", []int64{70, 0}, []uint32{100, 0}},
		{"only zero weights left", []int64{0, 0}, nil},
	}
	for _, tt := range tests {
		ds := make([]*ir.Destination, len(tt.weights))
		for i := range ds {
			ds[i] = &ir.Destination{Service: "s"}
		}
		var got []uint32
		for _, d := range normaliseWeights(ds, tt.weights) {
			got = append(got, d.Weight)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}
