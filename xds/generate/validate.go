package generate

import (
	"errors"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
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
//   - every RDS name of a listener has a RouteConfiguration, and every
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
		clusters: make(map[string]bool, len(r.Clusters)),
		rds:      map[string]bool{},
		eds:      make(map[string]bool, len(r.Endpoints)),
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
	clusters map[string]bool // defined clusters
	rds      map[string]bool // route configurations listeners ask for
	eds      map[string]bool // EDS clusters
	errs     []error
}

func (c *refChecker) addf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

func (c *refChecker) cluster(cl *clusterv3.Cluster) {
	c.clusters[cl.Name] = true
	if cl.GetType() == clusterv3.Cluster_EDS {
		if cl.GetEdsClusterConfig().GetServiceName() != "" {
			c.addf("cluster %s: eds service_name is not used by this generator", cl.Name)
		}
		c.eds[cl.Name] = true
	}
	if !c.deep {
		return
	}
	if ts := cl.GetTransportSocket(); ts != nil {
		ctx := &tlsv3.UpstreamTlsContext{}
		if c.unpack("cluster "+cl.Name, ts.GetTypedConfig(), ctx) {
			c.secrets("cluster "+cl.Name, ctx.GetCommonTlsContext())
		}
	}
	for name, a := range cl.GetTypedExtensionProtocolOptions() {
		c.unpackAny("cluster "+cl.Name+" protocol options "+name, a)
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
}

func (c *refChecker) chain(where string, ch *listenerv3.FilterChain) {
	if ts := ch.GetTransportSocket(); ts != nil {
		ctx := &tlsv3.DownstreamTlsContext{}
		if c.unpack(where, ts.GetTypedConfig(), ctx) {
			c.secrets(where, ctx.GetCommonTlsContext())
		}
	}
	for _, f := range ch.Filters {
		c.networkFilter(where, f)
	}
}

func (c *refChecker) networkFilter(where string, f *listenerv3.Filter) {
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
	if !c.clusters[name] {
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
	endpoints := make(map[string]bool, len(r.Endpoints))
	for _, cla := range r.Endpoints {
		endpoints[cla.ClusterName] = true
		if !c.eds[cla.ClusterName] {
			c.addf("endpoints %s belong to no EDS cluster", cla.ClusterName)
		}
	}
	for name := range c.eds {
		if !endpoints[name] {
			c.addf("EDS cluster %s has no endpoints resource", name)
		}
	}
}

// sortedUnique checks that each type's names are sorted and unique, as ForProxy leaves them.
func (c *refChecker) sortedUnique(r *Resources) {
	for typ, list := range r.ByType() {
		for i := 1; i < len(list); i++ {
			if prev, name := resourceName(list[i-1]), resourceName(list[i]); prev >= name {
				c.addf("%s: %q after %q: names must be sorted and unique", typ, name, prev)
			}
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
