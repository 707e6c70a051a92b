package generate

import (
	"strings"
	"unsafe"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// Allocation in bulk. The config of a large mesh is tens of thousands of
// small messages and strings (about ten per endpoint, cluster and route);
// allocating them one by one, and collecting the garbage that causes, was
// most of the cost of generation. The builder takes them from chunks
// instead, one allocation per chunk.
//
// Values handed out are zeroed, belong to the output (or to one ForProxy
// call) and are used in place, never copied — protobuf messages must not be.
// A chunk stays in memory as long as any value in it does, which is what
// happens anyway: the output is kept or dropped as a whole.

// chunkBytes caps the size of a chunk, which bounds what an estimate too
// large can waste.
const chunkBytes = 64 << 10

// slab hands out values of one type, or slices of them, from chunks.
type slab[T any] struct {
	free  []T
	chunk int // values per chunk
}

// newSlab makes a slab for about n values, in chunks of equal size.
func newSlab[T any](n int) slab[T] {
	n = max(n, 1)
	perChunk := max(chunkBytes/max(int(unsafe.Sizeof(*new(T))), 1), 1)
	chunks := (n + perChunk - 1) / perChunk
	return slab[T]{chunk: (n + chunks - 1) / chunks}
}

// new returns a zeroed value.
func (s *slab[T]) new() *T {
	if len(s.free) == 0 {
		s.free = make([]T, s.chunk)
	}
	v := &s.free[0]
	s.free = s.free[1:]
	return v
}

// slice returns n zeroed values. Its capacity is n: appending to it
// reallocates rather than run into the next slice.
func (s *slab[T]) slice(n int) []T {
	if n > len(s.free) {
		if n > s.chunk {
			return make([]T, n)
		}
		s.free = make([]T, s.chunk)
	}
	out := s.free[:n:n]
	s.free = s.free[n:]
	return out
}

// text stores strings in large shared buffers. strings.Builder only ever
// appends, so a string taken from its buffer never changes.
type text struct {
	buf   strings.Builder
	chunk int // bytes per buffer
}

func newText(n int) text { return text{chunk: min(max(n, 64), chunkBytes)} }

// string returns b as a string stored in the current buffer.
func (t *text) string(b []byte) string {
	if t.buf.Cap()-t.buf.Len() < len(b) {
		t.buf = strings.Builder{}
		t.buf.Grow(max(len(b), t.chunk))
	}
	start := t.buf.Len()
	t.buf.Write(b)
	return t.buf.String()[start:]
}

// memory is the slabs of one ForProxy call, sized from the model.
type memory struct {
	size    sizes
	text    text
	targets slab[target]

	clusters slab[clusterv3.Cluster]
	tls      slab[tlsMessages]
	tlsBytes slab[byte]

	loads         slab[endpointv3.ClusterLoadAssignment]
	localities    slab[endpointv3.LocalityLbEndpoints]
	localityLists slab[*endpointv3.LocalityLbEndpoints]
	endpointLists slab[*endpointv3.LbEndpoint]
	endpoints     slab[endpointMessages]
	podMetadata   slab[podMetadataMessages]

	hosts      slab[routev3.VirtualHost]
	domains    slab[string]
	routes     slab[routeMessages]
	routeLists slab[*routev3.Route]
}

// sizes are what the outbound config of the services needs, about.
type sizes struct {
	targets      int // clusters: service ports × (1 + subsets)
	endpoints    int // endpoint messages: endpoints × service ports
	endpointRefs int // endpoints over all clusters, at most
	hosts        int // virtual hosts: HTTP service ports
	domains      int // domains over all virtual hosts, at most
	text         int // bytes of names and domains
	tls          int // services with identities
	tlsBytes     int // bytes of their encoded upstream TLS contexts, about
}

func (b *builder) newMemory() *memory {
	n := b.estimate()
	return &memory{
		size:          n,
		text:          newText(n.text),
		targets:       newSlab[target](n.targets),
		clusters:      newSlab[clusterv3.Cluster](n.targets),
		tls:           newSlab[tlsMessages](n.tls),
		tlsBytes:      newSlab[byte](n.tlsBytes),
		loads:         newSlab[endpointv3.ClusterLoadAssignment](n.targets),
		localities:    newSlab[endpointv3.LocalityLbEndpoints](n.targets),
		localityLists: newSlab[*endpointv3.LocalityLbEndpoints](n.targets),
		endpointLists: newSlab[*endpointv3.LbEndpoint](n.endpointRefs),
		endpoints:     newSlab[endpointMessages](n.endpoints),
		podMetadata:   newSlab[podMetadataMessages](n.endpoints),
		hosts:         newSlab[routev3.VirtualHost](n.hosts),
		domains:       newSlab[string](n.domains),
		routes:        newSlab[routeMessages](n.hosts),
		routeLists:    newSlab[*routev3.Route](n.hosts),
	}
}

func (b *builder) estimate() sizes {
	var n sizes
	for _, s := range b.services {
		clusters := len(s.validPorts) * (1 + len(s.Subsets))
		n.targets += clusters
		if !s.Headless {
			// Subsets share the endpoint messages of their base cluster.
			n.endpoints += len(s.validPorts) * len(s.Endpoints)
			n.endpointRefs += clusters * len(s.Endpoints)
		}
		if len(s.Identities) > 0 {
			n.tls++
			n.tlsBytes += upstreamTLS.sizeEstimate(s.Identities, s.FQDN)
		}
		names := len(s.FQDN) + len(s.Name) + len(s.Namespace)
		n.text += clusters * (len(s.FQDN) + 24)
		for _, p := range s.validPorts {
			if p.Protocol.IsHTTP() {
				n.hosts++
				n.domains += b.maxDomains(s)
				n.text += 4*names + 2*len(s.ips)*48 + 64
			}
		}
	}
	return n
}
