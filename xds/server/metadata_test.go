package server

import (
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/structpb"
)

// TestNodeMetadataInStatus: a real delta client's node metadata under
// "capstan.dev/" reaches ProxyStatus (string values of bounded size only),
// from the first request, which alone carries the node.
func TestNodeMetadataInStatus(t *testing.T) {
	s := startServer(t)
	s.set(t, testNode, sidecarConfig(t, edsCluster("c1", time.Second)))
	md, err := structpb.NewStruct(map[string]any{
		"capstan.dev/roots":   "ab,cd",
		"capstan.dev/number":  7,
		"capstan.dev/huge":    strings.Repeat("x", maxNodeMetadataValue+1),
		"istio.io/not-ours":   "x",
		"capstan.dev/version": "v1",
	})
	if err != nil {
		t.Fatal(err)
	}
	d := s.delta(t)
	d.send(&discoveryv3.DeltaDiscoveryRequest{Node: &corev3.Node{Id: testNode, Metadata: md}, TypeUrl: resourcev3.ClusterType})
	d.send(deltaAckOf(d.recv()))
	st := s.waitStatus(t, testNode, "the node's stream", func(st ProxyStatus, ok bool) bool { return ok && st.Streams == 1 })
	want := map[string]string{"capstan.dev/roots": "ab,cd", "capstan.dev/version": "v1"}
	if diff := cmp.Diff(want, st.Metadata); diff != "" {
		t.Errorf("Metadata (-want +got):\n%s", diff)
	}
}

func TestNodeMetadataKeyLimit(t *testing.T) {
	fields := map[string]any{}
	for i := range 2 * maxNodeMetadataKeys {
		fields["capstan.dev/k"+string(rune('a'+i))] = "v"
	}
	md, err := structpb.NewStruct(fields)
	if err != nil {
		t.Fatal(err)
	}
	if got := nodeMetadata(&corev3.Node{Metadata: md}); len(got) != maxNodeMetadataKeys {
		t.Errorf("%d keys kept, want %d", len(got), maxNodeMetadataKeys)
	}
	if got := nodeMetadata(nil); got != nil {
		t.Errorf("no node: %v", got)
	}
}
