package generate

import (
	"errors"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// Validate runs ValidateAll on every resource, and on the typed configs
// inside them, then CheckReferences.
func (r *Resources) Validate() error {
	var errs []error
	for typ, list := range r.ByType() {
		for _, m := range list {
			if err := m.(validator).ValidateAll(); err != nil {
				errs = append(errs, fmt.Errorf("%s %s: %w", typ, resourceName(m), err))
			}
		}
	}
	if err := r.CheckReferences(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// CheckReferences checks that the resources are a consistent set, as the
// snapshot cache's Consistent() and Envoy expect:
//   - every cluster named by a route, a weighted cluster, a mirror or a TCP
//     proxy exists;
//   - every RDS name of a listener (API listeners of proxyless gRPC clients
//     included) has a RouteConfiguration, and every
//     RouteConfiguration is named by a listener;
//   - every EDS cluster has a ClusterLoadAssignment, and every
//     ClusterLoadAssignment belongs to an EDS cluster;
//   - every SDS name is SecretWorkloadCert or SecretRootCA;
//   - within each type, names are unique and sorted.
//
// Typed configs inside listeners and clusters are unpacked and validated too.
func (r *Resources) CheckReferences() error { return r.checkReferences(true) }

// checkReferences is CheckReferences; with deep false it leaves out the
// typed configs of clusters (a thousand upstream TLS contexts in a large
// mesh, encoded from constant parts validated once, with the constant SDS
// names) and the HTTP filter and per-route filter configs, which reference
// nothing. ForProxy uses that.
func (r *Resources) checkReferences(deep bool) error {
	c := &refChecker{
		deep:     deep,
		clusters: make(map[string]clusterState, len(r.Clusters)),
		rds:      map[string]bool{},
	}
	for _, cl := range r.Clusters {
		c.cluster(cl)
	}
	for _, l := range r.Listeners {
		c.listener(l)
	}
	for _, rc := range r.Routes {
		c.routeConfig(rc)
	}
	c.orphans(r)
	c.sortedUnique(r)
	return errors.Join(c.errs...)
}

type refChecker struct {
	deep     bool
	clusters map[string]clusterState // defined clusters
	eds      int                     // how many are EDS clusters
	rds      map[string]bool         // route configurations listeners ask for
	errs     []error
}

// clusterState is what the checker knows of a defined cluster.
type clusterState uint8

const (
	undefinedCluster    clusterState = iota
	otherCluster                     // defined, not EDS
	edsCluster                       // EDS, no endpoints resource seen yet
	edsClusterEndpoints              // EDS, its endpoints resource seen
)

func (c *refChecker) addf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

func (c *refChecker) cluster(cl *clusterv3.Cluster) {
	state := otherCluster
	if cl.GetType() == clusterv3.Cluster_EDS {
		if cl.GetEdsClusterConfig().GetServiceName() != "" {
			c.addf("cluster %s: eds service_name is not used by this generator", cl.Name)
		}
		state = edsCluster
		c.eds++
	}
	c.clusters[cl.Name] = state
	if !c.deep {
		return
	}
	c.upstreamSocket(cl.Name, cl.GetTransportSocket())
	for _, m := range cl.GetTransportSocketMatches() {
		c.upstreamSocket(cl.Name+" match "+m.GetName(), m.GetTransportSocket())
	}
	for name, a := range cl.GetTypedExtensionProtocolOptions() {
		c.unpackAny("cluster "+cl.Name+" protocol options "+name, a)
	}
}

// upstreamSocket checks the secrets an upstream TLS socket references.
func (c *refChecker) upstreamSocket(where string, ts *corev3.TransportSocket) {
	if ts == nil {
		return
	}
	ctx := &tlsv3.UpstreamTlsContext{}
	if c.unpack("cluster "+where, ts.GetTypedConfig(), ctx) {
		c.secrets("cluster "+where, ctx.GetCommonTlsContext())
	}
}

func (c *refChecker) listener(l *listenerv3.Listener) {
	chains := slices.Clone(l.FilterChains)
	if l.DefaultFilterChain != nil {
		chains = append(chains, l.DefaultFilterChain)
	}
	for _, lf := range l.ListenerFilters {
		if !c.deep {
			break
		}
		c.unpackAny("listener "+l.Name+" filter "+lf.Name, lf.GetTypedConfig())
	}
	for _, ch := range chains {
		c.chain("listener "+l.Name+" chain "+ch.Name, ch)
	}
	if api := l.GetApiListener().GetApiListener(); api != nil {
		c.apiListener("listener "+l.Name, api)
	}
}

// apiListener follows the RDS reference of a proxyless gRPC client's
// listener: an HTTP connection manager packed in the listener itself.
func (c *refChecker) apiListener(where string, a *anypb.Any) {
	m := &hcmv3.HttpConnectionManager{}
	if c.unpack(where+" api listener", a, m) {
		c.hcm(where, m)
	}
}

func (c *refChecker) chain(where string, ch *listenerv3.FilterChain) {
	if ts := ch.GetTransportSocket(); ts != nil && !c.constant(where, ts.GetTypedConfig()) {
		ctx := &tlsv3.DownstreamTlsContext{}
		if c.unpack(where, ts.GetTypedConfig(), ctx) {
			c.secrets(where, ctx.GetCommonTlsContext())
		}
	}
	for _, f := range ch.Filters {
		c.networkFilter(where, f)
	}
}

// constant reports whether a is one of the typed configs packed once at
// start-up (constConfig) and, unless deep, checks the cluster it references
// by name instead of decoding it.
func (c *refChecker) constant(where string, a *anypb.Any) bool {
	cluster, ok := constantRefs[a]
	if !ok || c.deep {
		return false
	}
	if cluster != "" {
		c.clusterRef(loc{where}, cluster)
	}
	return true
}

// constantRefs are the typed configs packed once at start-up, with the
// cluster each references ("" for none).
var constantRefs = map[*anypb.Any]string{}

// constConfig packs a config built only from constants (validated once, as
// mustPack does) and records the cluster it references for checkReferences.
func constConfig(m proto.Message, cluster string) *anypb.Any {
	a := mustPack(m)
	constantRefs[a] = cluster
	return a
}

func (c *refChecker) networkFilter(where string, f *listenerv3.Filter) {
	if c.constant(where, f.GetTypedConfig()) {
		return
	}
	switch f.Name {
	case filterHCM:
		m := &hcmv3.HttpConnectionManager{}
		if c.unpack(where, f.GetTypedConfig(), m) {
			c.hcm(where, m)
		}
	case filterTCPProxy:
		m := &tcpproxyv3.TcpProxy{}
		if c.unpack(where, f.GetTypedConfig(), m) {
			c.clusterRef(loc{where}, m.GetCluster())
		}
	default:
		c.addf("%s: unexpected network filter %s", where, f.Name)
	}
}

func (c *refChecker) hcm(where string, m *hcmv3.HttpConnectionManager) {
	if name := m.GetRds().GetRouteConfigName(); name != "" {
		c.rds[name] = true
	}
	if rc := m.GetRouteConfig(); rc != nil {
		c.routeConfig(rc)
	}
	for _, f := range m.HttpFilters {
		if !c.deep {
			break
		}
		c.unpackAny(where+" http filter "+f.Name, f.GetTypedConfig())
	}
}

func (c *refChecker) routeConfig(rc *routev3.RouteConfiguration) {
	for _, vh := range rc.VirtualHosts {
		for _, rt := range vh.Routes {
			c.route(loc{rc.Name, vh.Name, rt.Name}, rt)
		}
	}
}

// loc is where a problem is: a route configuration, host and route, or (with
// host and route empty) a place already described. Formatted only when needed.
type loc [3]string

func (l loc) String() string {
	if l[1] == "" && l[2] == "" {
		return l[0]
	}
	return "route configuration " + l[0] + " host " + l[1] + " route " + l[2]
}

func (c *refChecker) route(where loc, rt *routev3.Route) {
	a := rt.GetRoute()
	if a == nil {
		return
	}
	if name := a.GetCluster(); name != "" {
		c.clusterRef(where, name)
	}
	for _, w := range a.GetWeightedClusters().GetClusters() {
		c.clusterRef(where, w.Name)
	}
	for _, m := range a.RequestMirrorPolicies {
		c.clusterRef(where, m.Cluster)
	}
	for name, cfg := range rt.TypedPerFilterConfig {
		if !c.deep {
			break
		}
		c.unpackAny(where.String()+" per-filter config "+name, cfg)
	}
}

func (c *refChecker) clusterRef(where loc, name string) {
	if c.clusters[name] == undefinedCluster {
		c.addf("%s: cluster %q does not exist", where, name)
	}
}

func (c *refChecker) secrets(where string, ctx *tlsv3.CommonTlsContext) {
	refs := slices.Clone(ctx.GetTlsCertificateSdsSecretConfigs())
	refs = append(refs, ctx.GetCombinedValidationContext().GetValidationContextSdsSecretConfig(), ctx.GetValidationContextSdsSecretConfig())
	for _, s := range refs {
		if s == nil {
			continue
		}
		if !knownSecrets[s.Name] {
			c.addf("%s: unknown SDS secret %q", where, s.Name)
		}
		if _, ok := s.GetSdsConfig().GetConfigSourceSpecifier().(*corev3.ConfigSource_Ads); !ok {
			c.addf("%s: SDS secret %q is not fetched over ADS", where, s.Name)
		}
	}
}

// orphans checks the reverse direction: no route configuration or load
// assignment that nothing asks for, and none missing.
func (c *refChecker) orphans(r *Resources) {
	routes := make(map[string]bool, len(r.Routes))
	for _, rc := range r.Routes {
		routes[rc.Name] = true
		if !c.rds[rc.Name] {
			c.addf("route configuration %s is not used by any listener", rc.Name)
		}
	}
	for name := range c.rds {
		if !routes[name] {
			c.addf("route configuration %s is used by a listener but missing", name)
		}
	}
	withEndpoints := 0
	for _, cla := range r.Endpoints {
		switch c.clusters[cla.ClusterName] {
		case edsCluster:
			c.clusters[cla.ClusterName] = edsClusterEndpoints
			withEndpoints++
		case edsClusterEndpoints: // a duplicate, which sortedUnique reports
		default:
			c.addf("endpoints %s belong to no EDS cluster", cla.ClusterName)
		}
	}
	if withEndpoints == c.eds {
		return
	}
	for name, state := range c.clusters {
		if state == edsCluster {
			c.addf("EDS cluster %s has no endpoints resource", name)
		}
	}
}

// sortedUnique checks that each type's names are sorted and unique, as ForProxy leaves them.
func (c *refChecker) sortedUnique(r *Resources) {
	checkSorted(c, resource.ListenerType, r.Listeners, (*listenerv3.Listener).GetName)
	checkSorted(c, resource.RouteType, r.Routes, (*routev3.RouteConfiguration).GetName)
	checkSorted(c, resource.ClusterType, r.Clusters, (*clusterv3.Cluster).GetName)
	checkSorted(c, resource.EndpointType, r.Endpoints, (*endpointv3.ClusterLoadAssignment).GetClusterName)
	checkSorted(c, resource.SecretType, r.Secrets, (*tlsv3.Secret).GetName)
}

func checkSorted[T any](c *refChecker, typ string, list []T, name func(T) string) {
	for i := 1; i < len(list); i++ {
		if prev, next := name(list[i-1]), name(list[i]); prev >= next {
			c.addf("%s: %q after %q: names must be sorted and unique", typ, next, prev)
		}
	}
}

// unpack decodes a typed config into m and validates it; false (and an error
// recorded) when it cannot.
func (c *refChecker) unpack(where string, a *anypb.Any, m proto.Message) bool {
	if err := a.UnmarshalTo(m); err != nil {
		c.addf("%s: %w", where, err)
		return false
	}
	if err := m.(validator).ValidateAll(); err != nil {
		c.addf("%s: %w", where, err)
		return false
	}
	return true
}

// unpackAny decodes and validates a typed config of any registered type.
func (c *refChecker) unpackAny(where string, a *anypb.Any) {
	m, err := a.UnmarshalNew()
	if err != nil {
		c.addf("%s: %w", where, err)
		return
	}
	if err := m.(validator).ValidateAll(); err != nil {
		c.addf("%s: %w", where, err)
	}
}

// resourceName is the xDS name of a resource.
func resourceName(m proto.Message) string {
	switch r := m.(type) {
	case interface{ GetName() string }:
		return r.GetName()
	case interface{ GetClusterName() string }:
		return r.GetClusterName()
	}
	return ""
}
