package generate

import (
	"bytes"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/capstanmesh/capstan/xds/ir"
)

// TestUpstreamTLSEncoding: the fast encoding is byte for byte what
// deterministic proto.Marshal of the message gives.
func TestUpstreamTLSEncoding(t *testing.T) {
	for name, tc := range map[string]struct {
		sans []string
		sni  string
	}{
		"one identity":   {[]string{"spiffe://cluster.local/ns/default/sa/reviews"}, "reviews.default.svc.cluster.local"},
		"two identities": {[]string{"spiffe://cluster.local/ns/a/sa/x", "spiffe://cluster.local/ns/b/sa/y"}, "a.b"},
		"no SNI":         {[]string{"spiffe://td/ns/n/sa/s"}, ""},
		"long identity":  {[]string{"spiffe://td/" + strings.Repeat("x", 300)}, strings.Repeat("y", 255)},
	} {
		t.Run(name, func(t *testing.T) {
			want, err := proto.MarshalOptions{Deterministic: true}.Marshal(upstreamTLSContext(tc.sans, tc.sni))
			if err != nil {
				t.Fatal(err)
			}
			got, err := upstreamTLS.any(tc.sans, tc.sni)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Value, want) {
				t.Errorf("encoding differs:\n got %x\nwant %x", got.Value, want)
			}
			if got.TypeUrl != "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext" {
				t.Errorf("type URL %s", got.TypeUrl)
			}
		})
	}
}

func TestUpstreamTLSEncodingRejectsLongSNI(t *testing.T) {
	sni := strings.Repeat("y", 256)
	if _, err := upstreamTLS.any([]string{"spiffe://td/ns/n/sa/s"}, sni); err == nil {
		t.Fatal("want an error for a 256-byte SNI")
	}
	if err := upstreamTLSContext(nil, sni).ValidateAll(); err == nil {
		t.Fatal("ValidateAll accepts a 256-byte SNI; the fast path's rule is stale")
	}
}

// TestClusterNameMatchesIR keeps the local clusterName equal to ir.ClusterName.
func TestClusterNameMatchesIR(t *testing.T) {
	for _, subset := range []string{"", "v1"} {
		if got, want := clusterName("a.b.svc.cluster.local", 8080, subset), ir.ClusterName("a.b.svc.cluster.local", 8080, subset); got != want {
			t.Errorf("clusterName = %q, ir.ClusterName = %q", got, want)
		}
	}
}
