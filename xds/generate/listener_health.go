package generate

import (
	"net/http"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// readiness adds the health listener on 15021. It always answers the
// proxy's own readiness (/healthz/ready, Envoy's /ready); for a pod whose
// HTTP probes the injector rewrote, it also forwards each
// /app-health/<container>/<kind> path to the application in plaintext, so
// the kubelet's probes keep working under STRICT mTLS. Each probed port gets
// a plain HTTP/1.1 cluster "probe|<port>" to 127.0.0.1, as the kubelet
// would have connected.
func (b *builder) readiness() {
	if len(b.proxy.AppProbes) == 0 {
		b.addListener(adminListener(ListenerReadiness, PortReadiness, readinessConfig), nil)
		return
	}
	routes := []*routev3.Route{proxyReadyRoute()}
	clusters := map[uint32]bool{}
	for _, p := range b.proxy.AppProbes {
		rt, ok := b.appProbeRoute(p)
		if !ok {
			continue
		}
		routes = append(routes, rt)
		if !clusters[p.Port] {
			clusters[p.Port] = true
			b.addCluster(staticCluster(ProbeClusterName(p.Port), p.Port), nil)
		}
	}
	hcm := inlineHCM(ListenerReadiness, &routev3.RouteConfiguration{
		Name: ListenerReadiness,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    ListenerReadiness,
			Domains: []string{"*"},
			Routes:  routes,
		}},
	})
	cfg, err := pack(hcm)
	b.addListener(adminListener(ListenerReadiness, PortReadiness, cfg), err)
}

// proxyReadyRoute maps /healthz/ready to the admin endpoint's /ready.
func proxyReadyRoute() *routev3.Route {
	rt := clusterRoute(ListenerReadiness, &routev3.RouteMatch{
		PathSpecifier: &routev3.RouteMatch_Path{Path: "/healthz/ready"},
	}, ClusterAdmin)
	rt.GetRoute().PrefixRewrite = "/ready"
	return rt
}

// appProbeRoute forwards one rewritten probe path to the application's port
// and path, with the probe's headers (Host becomes the request authority).
// A probe that cannot be expressed is reported and left out: the kubelet
// then gets a 404 for it, and the pod stays unready rather than the whole
// health listener being rejected.
func (b *builder) appProbeRoute(p *ir.AppProbe) (*routev3.Route, bool) {
	if p == nil || !validProbe(p) {
		b.errs.add(podRef(b.proxy), "HTTP probe %s cannot be forwarded (bad path or port); probe left out", probeName(p))
		return nil, false
	}
	rt := clusterRoute(strings.TrimPrefix(p.Path, "/"), &routev3.RouteMatch{
		PathSpecifier: &routev3.RouteMatch_Path{Path: p.Path},
	}, ProbeClusterName(p.Port))
	action := rt.GetRoute()
	action.PrefixRewrite = p.TargetPath
	for _, h := range p.Headers {
		switch name := http.CanonicalHeaderKey(h.Name); {
		case name == "Host":
			action.HostRewriteSpecifier = &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: h.Value}
		case strings.HasPrefix(h.Name, ":"):
			b.errs.add(podRef(b.proxy), "HTTP probe %s: header %q cannot be set; header left out", p.Path, h.Name)
		default:
			rt.RequestHeadersToAdd = append(rt.RequestHeadersToAdd, &corev3.HeaderValueOption{
				Header:       &corev3.HeaderValue{Key: h.Name, Value: h.Value},
				AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
			})
		}
	}
	if err := rt.ValidateAll(); err != nil {
		b.errs.add(podRef(b.proxy), "HTTP probe %s cannot be forwarded: %v; probe left out", p.Path, err)
		return nil, false
	}
	return rt, true
}

// validProbe: the kubelet asks for Path, which the injector made
// /app-health/...; the target is an absolute path on a valid port that is
// not one of the proxy's own (a probe forwarded there would loop).
func validProbe(p *ir.AppProbe) bool {
	return strings.HasPrefix(p.Path, "/app-health/") && strings.HasPrefix(p.TargetPath, "/") &&
		p.Port > 0 && p.Port <= 65535 && !reservedPorts[p.Port]
}

func probeName(p *ir.AppProbe) string {
	if p == nil {
		return "<nil>"
	}
	return p.Path + " (port " + strconv.FormatUint(uint64(p.Port), 10) + ")"
}
