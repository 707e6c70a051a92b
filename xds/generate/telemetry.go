package generate

import (
	"strings"

	"google.golang.org/protobuf/types/known/structpb"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// MetadataNamespace is the filter_metadata key under which clusters and
// endpoints carry what telemetry labels metrics with.
const MetadataNamespace = "capstan"

// setClusterTelemetry names an outbound cluster's stats readably and tells
// telemetry which service, port and subset it sends to.
//
// Envoy's Prometheus output takes a cluster's name tag from its stat name up
// to the first dot, so `outbound|80||web.shop.svc.cluster.local` would show
// as envoy_cluster_name="outbound|80||web" in a metric named after
// "shop_svc_cluster_local". alt_stat_name is the name with its dots turned
// into underscores (which Kubernetes names cannot contain), so the whole
// name is the tag: outbound|80||web_shop_svc_cluster_local.
func setClusterTelemetry(c *clusterv3.Cluster, t *target) {
	c.AltStatName = StatName(c.Name)
	fields := map[string]*structpb.Value{
		"service":   structpb.NewStringValue(t.service.FQDN),
		"name":      structpb.NewStringValue(t.service.Name),
		"namespace": structpb.NewStringValue(t.service.Namespace),
		"port":      structpb.NewNumberValue(float64(t.port.Port)),
	}
	if t.subset != nil {
		fields["subset"] = structpb.NewStringValue(t.subset.Name)
	}
	c.Metadata = metadata(fields)
}

// StatName is the alt_stat_name of a cluster: its name without dots.
func StatName(cluster string) string { return strings.ReplaceAll(cluster, ".", "_") }

// RouteStatPrefix is the stat prefix of a MeshRoute rule's routes, its name
// ("<namespace>/<meshroute>/<rule>") without dots: Envoy then keeps
// per-route request counts and latencies under
// vhost.<host:port>.route.<prefix>, which the bootstrap's tag extraction
// turns into the route label of the golden metrics.
func RouteStatPrefix(rule string) string { return strings.ReplaceAll(rule, ".", "_") }

// endpointMetadata names the pod behind an endpoint, as the model does
// ("namespace/name"), under pod; nil without a pod. One message per pod
// and proxy, shared by the pod's endpoints in every cluster, its parts
// allocated together (podMetadataMessages).
func (b *builder) endpointMetadata(ep *ir.Endpoint) *corev3.Metadata {
	if ep.Pod == "" {
		return nil
	}
	if m, ok := b.podMetadata[ep.Pod]; ok {
		return m
	}
	msgs := b.mem.podMetadata.new()
	msgs.pod.StringValue = ep.Pod
	msgs.value.Kind = &msgs.pod
	msgs.fields.Fields = map[string]*structpb.Value{"pod": &msgs.value}
	msgs.metadata.FilterMetadata = map[string]*structpb.Struct{MetadataNamespace: &msgs.fields}
	if b.podMetadata == nil {
		b.podMetadata = make(map[string]*corev3.Metadata, b.mem.size.endpoints)
	}
	b.podMetadata[ep.Pod] = &msgs.metadata
	return &msgs.metadata
}

// podMetadataMessages are the messages of an endpoint's metadata.
type podMetadataMessages struct {
	metadata corev3.Metadata
	fields   structpb.Struct
	value    structpb.Value
	pod      structpb.Value_StringValue
}

func metadata(fields map[string]*structpb.Value) *corev3.Metadata {
	return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{MetadataNamespace: {Fields: fields}}}
}
