package generate

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// mirrorFeature copies a share of requests to another cluster. A mirror to an
// unknown cluster is reported and dropped; the rule itself still works.
type mirrorFeature struct{}

func (mirrorFeature) name() string { return "mirror" }

func (mirrorFeature) fields() []routeField {
	return []routeField{{path: "mirror", grpc: grpcNotSent, note: "gRPC's xDS support has no request mirroring"}}
}

func (mirrorFeature) check(*ir.HTTPRoute) error { return nil }

func (mirrorFeature) sidecar(r *sidecarRule) error {
	m := r.in.Mirror
	if r.action == nil || m == nil {
		return nil
	}
	t := r.b.destination(&m.Destination, r.port)
	if t == nil {
		r.dropped = append(r.dropped, "mirror cluster "+destinationCluster(&m.Destination, r.port)+" not found; mirror dropped")
		return nil
	}
	r.action.RequestMirrorPolicies = []*routev3.RouteAction_RequestMirrorPolicy{{
		Cluster:         t.name,
		RuntimeFraction: &corev3.RuntimeFractionalPercent{DefaultValue: percent(m.Percent)},
	}}
	return nil
}

func (mirrorFeature) grpc(*grpcRule) error { return nil }
