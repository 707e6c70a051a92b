package generate

import (
	"errors"
	"fmt"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// defaultConnectTimeout applies when no ConnectionPool sets one (Istio's default).
const defaultConnectTimeout = 10 * time.Second

// outboundClusters adds a cluster per service port and per subset, with their endpoints.
func (b *builder) outboundClusters() {
	for _, s := range b.services {
		if b.skipsService(s) {
			continue
		}
		for _, p := range s.validPorts {
			b.addOutboundCluster(b.newTarget(s, p, nil))
			for _, ss := range s.Subsets {
				if ss != nil {
					b.addOutboundCluster(b.newTarget(s, p, ss))
				}
			}
		}
	}
}

// addOutboundCluster adds the cluster of t. A policy Envoy rejects is reported
// on its DestinationPolicy and the cluster is generated without it.
func (b *builder) addOutboundCluster(t *target) {
	if b.targets[t.name] != nil {
		b.errs.add(serviceRef(t.service.Service), "cluster %s is defined twice; subset skipped", t.name)
		return
	}
	c, err := b.outboundCluster(t, t.modelPolicy())
	var pe *policyError
	if errors.As(err, &pe) {
		b.errs.add(b.policySource(t.service), "cluster %s: %v; traffic policy ignored", t.name, pe.err)
		c, err = b.outboundCluster(t, nil)
	}
	if err != nil {
		b.errs.add(serviceRef(t.service.Service), "cluster %s: %v; cluster skipped", t.name, err)
		return
	}
	b.targets[t.name] = t
	if b.keepsCluster(t.service) {
		b.out.Clusters = append(b.out.Clusters, c)
		if b.sel != nil {
			b.selectedClusters = append(b.selectedClusters, c)
		}
	}
	if !t.service.Headless && b.keepsLoadAssignment(t.service) {
		b.out.Endpoints = append(b.out.Endpoints, b.loadAssignment(t))
	}
}

// policyError is a cluster failure caused by its traffic policy.
type policyError struct{ err error }

func (e *policyError) Error() string { return e.err.Error() }

func (b *builder) policySource(s *service) *ir.ObjectRef {
	if s.PolicySource != nil {
		return refOf(*s.PolicySource)
	}
	return serviceRef(s.Service)
}

// outboundCluster builds and checks the cluster of t with the given policy
// (recorded in t.policy on success). Failures the policy causes are *policyError.
//
// Only a cluster shaped by a traffic policy or a retry budget goes through
// ValidateAll: any other is its name (never empty, "outbound|…"), shared
// constant parts validated at start-up and the upstream TLS context (its
// one input-dependent rule checked by upstreamTLS.check), which leaves
// ValidateAll nothing to find.
func (b *builder) outboundCluster(t *target, policy *ir.TrafficPolicy) (*clusterv3.Cluster, error) {
	c := b.mem.clusters.new()
	c.Name, c.ConnectTimeout = t.name, sharedConnectTimeout
	setClusterTelemetry(c, t)
	if t.service.Headless {
		setOriginalDst(c)
	} else {
		setEDS(c)
	}
	if err := b.setUpstreamTLS(c, t.service); err != nil {
		return nil, err
	}
	if err := applyPolicy(c, policy, t.port.Protocol, reachesApplications(t.service)); err != nil {
		return nil, blame(policy, err)
	}
	budget := b.budgets[c.Name]
	c.CircuitBreakers = circuitBreakers(policyPool(policy), budget, t.port.Protocol.IsHTTP())
	if policy != nil || budget != nil {
		if err := c.ValidateAll(); err != nil {
			// Everything but the policy is built from checked parts.
			return nil, blame(policy, err)
		}
	}
	t.policy = policy
	return c, nil
}

// blame makes err a *policyError when there is a policy to blame.
func blame(policy *ir.TrafficPolicy, err error) error {
	if policy == nil {
		return err
	}
	return &policyError{err}
}

func setEDS(c *clusterv3.Cluster) {
	c.ClusterDiscoveryType = sharedEDSType
	c.EdsClusterConfig = sharedEDSConfig
}

// setOriginalDst makes c forward to the connection's original destination,
// as headless services and passthrough traffic need.
func setOriginalDst(c *clusterv3.Cluster) {
	c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_ORIGINAL_DST}
	c.LbPolicy = clusterv3.Cluster_CLUSTER_PROVIDED
}

// staticCluster sends to one local address, 127.0.0.1:port.
func staticCluster(name string, port uint32) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		ConnectTimeout:       sharedConnectTimeout,
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: name,
			Endpoints: []*endpointv3.LocalityLbEndpoints{{
				LbEndpoints: []*endpointv3.LbEndpoint{lbEndpoint("127.0.0.1", port)},
			}},
		},
	}
}

// passthroughCluster forwards outbound traffic to its original destination.
func passthroughCluster() *clusterv3.Cluster {
	c := &clusterv3.Cluster{Name: ClusterPassthrough, ConnectTimeout: sharedConnectTimeout, CircuitBreakers: sharedUnlimitedBreakers}
	setOriginalDst(c)
	return c
}

// inboundPassthroughCluster forwards inbound traffic for unknown ports to the
// application, from 127.0.0.6 so that the capture rules let it through (as Istio does).
func inboundPassthroughCluster() *clusterv3.Cluster {
	c := &clusterv3.Cluster{Name: ClusterInboundPassthrough, ConnectTimeout: sharedConnectTimeout, CircuitBreakers: sharedUnlimitedBreakers}
	setOriginalDst(c)
	c.UpstreamBindConfig = &corev3.BindConfig{SourceAddress: &corev3.SocketAddress{
		Address:       "127.0.0.6",
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 0},
	}}
	return c
}

// addCluster validates and adds a cluster built from fixed parts; a failure is a bug.
func (b *builder) addCluster(c *clusterv3.Cluster, err error) {
	if err == nil {
		err = c.ValidateAll()
	}
	if err != nil {
		b.fail(fmt.Errorf("cluster %s: %w", c.GetName(), err))
		return
	}
	b.out.Clusters = append(b.out.Clusters, c)
}

// inboundCluster sends an inbound port's traffic to the application on
// 127.0.0.1, closing idle HTTP connections first (idle_defaults.go).
func inboundCluster(in *ir.InboundPort) (*clusterv3.Cluster, error) {
	c := staticCluster(InboundClusterName(in.Port), in.Port)
	c.CircuitBreakers = sharedUnlimitedBreakers
	opts, err := appProtocolOptions(in.Protocol, nil)
	if err != nil {
		return nil, err
	}
	if opts != nil {
		c.TypedExtensionProtocolOptions = opts
	}
	return c, nil
}
