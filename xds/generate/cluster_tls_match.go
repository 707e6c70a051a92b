package generate

import (
	"google.golang.org/protobuf/types/known/structpb"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// mTLS per endpoint. Halfway through a rollout of injection a service has
// pods with a sidecar (which, under STRICT, accept only mTLS) and pods
// without one (which speak plaintext only). A cluster that originated mTLS
// to all of them would fail every call to the second kind; one that spoke
// plaintext, every call to the first under STRICT. So the cluster of such a
// service decides per endpoint: endpoints with a sidecar carry
// TransportSocketMatchKey = TransportSocketMatchValue in their
// envoy.transport_socket_match metadata, which the cluster's one
// transport_socket_match turns into the mesh's mTLS; the others get the
// cluster's default, plaintext. Services whose endpoints all have sidecars
// (or none) keep one transport socket on the cluster and no extra metadata.
// Headless services' ORIGINAL_DST clusters have no endpoint metadata: they
// originate mTLS when any of their pods has a sidecar.
const (
	// transportSocketMatchFilter is Envoy's metadata namespace for
	// transport socket matches.
	transportSocketMatchFilter = "envoy.transport_socket_match"
	// TransportSocketMatchKey and TransportSocketMatchValue mark an
	// endpoint whose pod has a sidecar.
	TransportSocketMatchKey   = "tlsMode"
	TransportSocketMatchValue = "capstan-mtls"
	// transportSocketMatchName names the cluster's match (stats, dumps).
	transportSocketMatchName = "capstan-mtls"
)

// sharedTLSMatch is both the cluster's match criteria and the endpoints'
// envoy.transport_socket_match metadata.
var sharedTLSMatch = &structpb.Struct{Fields: map[string]*structpb.Value{
	TransportSocketMatchKey: structpb.NewStringValue(TransportSocketMatchValue),
}}

// tlsPerEndpoint reports whether the clusters of s decide mTLS per
// endpoint: mTLS is on in the mesh, the service is not headless, and some
// but not all of its endpoints have a sidecar. Worked out once per service.
func (b *builder) tlsPerEndpoint(s *service) bool {
	if s.mixedTLS == mixedUnknown {
		s.mixedTLS = mixedNo
		if b.mesh.MTLSMode != ir.MTLSDisable && !s.Headless && hasMixedIdentities(s.Endpoints) {
			s.mixedTLS = mixedYes
		}
	}
	return s.mixedTLS == mixedYes
}

// mixedState caches tlsPerEndpoint on a service.
type mixedState uint8

const (
	mixedUnknown mixedState = iota
	mixedNo
	mixedYes
)

// hasMixedIdentities: some endpoints have an identity (a sidecar) and some do not.
func hasMixedIdentities(eps []*ir.Endpoint) bool {
	var with, without bool
	for _, ep := range eps {
		if ep == nil {
			continue
		}
		if ep.Identity != "" {
			with = true
		} else {
			without = true
		}
	}
	return with && without
}

// setTLSPerEndpoint gives c the mesh's mTLS socket for the endpoints marked
// with sharedTLSMatch, and plaintext (no transport socket) for the others.
func setTLSPerEndpoint(c *clusterv3.Cluster, ts *corev3.TransportSocket) {
	c.TransportSocket = nil
	c.TransportSocketMatches = []*clusterv3.Cluster_TransportSocketMatch{{
		Name: transportSocketMatchName, Match: sharedTLSMatch, TransportSocket: ts,
	}}
}

// endpointMetadataOf is the metadata of an endpoint of t: the pod's
// (endpointMetadata) plus the mTLS mark when t's service decides mTLS per
// endpoint and the endpoint has a sidecar. One message per pod and proxy.
func (b *builder) endpointMetadataOf(t *target, ep *ir.Endpoint) *corev3.Metadata {
	plain := b.endpointMetadata(ep)
	if ep.Identity == "" || !b.tlsPerEndpoint(t.service) {
		return plain
	}
	if m, ok := b.podTLSMetadata[ep]; ok {
		return m
	}
	m := &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{transportSocketMatchFilter: sharedTLSMatch}}
	if plain != nil {
		m.FilterMetadata[MetadataNamespace] = plain.FilterMetadata[MetadataNamespace]
	}
	if b.podTLSMetadata == nil {
		b.podTLSMetadata = map[*ir.Endpoint]*corev3.Metadata{}
	}
	b.podTLSMetadata[ep] = m
	return m
}
