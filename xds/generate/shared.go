package generate

import (
	"google.golang.org/protobuf/types/known/durationpb"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// Immutable messages shared by many resources: in a mesh of thousands of
// services they save tens of thousands of allocations per proxy. Nothing may
// modify them — which is why Resources are read-only (clone before editing).
var (
	// sharedADS is the config source of every EDS cluster.
	sharedADS = ads()
	// sharedConnectTimeout is defaultConnectTimeout.
	sharedConnectTimeout = durationpb.New(defaultConnectTimeout)
	// sharedNoTimeout disables a route's timeout.
	sharedNoTimeout = &durationpb.Duration{}
	// sharedMatchAll matches every request.
	sharedMatchAll = matchAll()
	// sharedEDSType and sharedEDSConfig make a cluster EDS over ADS.
	sharedEDSType   = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}
	sharedEDSConfig = &clusterv3.Cluster_EdsClusterConfig{EdsConfig: sharedADS}
	// sharedHTTP2Options are the protocol options of HTTP2 and GRPC clusters
	// without connection pool settings: explicit HTTP/2.
	sharedHTTP2Options = mustPack(httpOptions(ir.ProtocolHTTP2, nil))
)
