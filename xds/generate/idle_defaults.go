package generate

import (
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// Idle connections to applications. An application closes a keep-alive
// connection it found idle for its keep-alive timeout (Node.js and uvicorn
// 5s, Apache 5s, gunicorn 2s, Tomcat 20s); a request the sidecar sends on
// that connection as it closes is lost, and the caller sees a 503 (UC).
// Two defaults close the race:
//
//   - upstream connections to applications — the inbound cluster of an
//     HTTP port, and outbound HTTP clusters of services with endpoints
//     without a sidecar — close after defaultAppIdleTimeout idle, below
//     the common keep-alive defaults, so the sidecar usually closes first;
//     connections between sidecars keep Envoy's hour;
//   - the inbound route retries a request whose connection was reset, once
//     the request went out, when its method is idempotent (RFC 9110: GET,
//     HEAD, OPTIONS, TRACE, PUT, DELETE): on a new connection to the same
//     application, up to defaultRetries times. Other methods keep the
//     retries that cannot repeat a side effect (defaultRetryOn). The
//     default route of a service with endpoints without a sidecar gets
//     the same split (idempotentDefaultRoute), as the client's sidecar
//     talks to those applications itself.
const defaultAppIdleTimeout = 4 * time.Second

// idempotentMethods is the full-match RE2 of the idempotent methods.
const idempotentMethods = "GET|HEAD|OPTIONS|TRACE|PUT|DELETE"

// inboundIdempotentRetryOn adds reset (after the request went out) to the
// default retry conditions.
const inboundIdempotentRetryOn = "connect-failure,refused-stream,reset"

var (
	defaultAppIdle = ir.Duration(defaultAppIdleTimeout)
	// sharedAppIdleOptions are the protocol options of clusters to
	// applications without pool settings, by protocol.
	sharedAppIdleOptions = map[ir.Protocol]*anypb.Any{
		ir.ProtocolHTTP:  mustPack(httpOptions(ir.ProtocolHTTP, commonHTTPOptions(&ir.ConnectionPool{IdleTimeout: &defaultAppIdle}))),
		ir.ProtocolHTTP2: mustPack(httpOptions(ir.ProtocolHTTP2, commonHTTPOptions(&ir.ConnectionPool{IdleTimeout: &defaultAppIdle}))),
		ir.ProtocolGRPC:  mustPack(httpOptions(ir.ProtocolGRPC, commonHTTPOptions(&ir.ConnectionPool{IdleTimeout: &defaultAppIdle}))),
	}
	// sharedIdempotentMatch matches every request with an idempotent method.
	sharedIdempotentMatch = mustValid(&routev3.RouteMatch{
		PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"},
		Headers: []*routev3.HeaderMatcher{{
			Name: ":method",
			HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
				MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: idempotentMethods}},
			}},
		}},
	})
	sharedInboundIdempotentRetries = mustValid(&routev3.RetryPolicy{
		RetryOn: inboundIdempotentRetryOn, NumRetries: wrapperspb.UInt32(defaultRetries),
	})
	// sharedIdempotentDefaultRetries are the default retries plus reset.
	sharedIdempotentDefaultRetries = func() *routev3.RetryPolicy {
		p := proto.Clone(sharedDefaultRetryPolicy).(*routev3.RetryPolicy)
		p.RetryOn = inboundIdempotentRetryOn
		return mustValid(p)
	}()
	sharedInboundRetries = mustValid(&routev3.RetryPolicy{
		RetryOn: defaultRetryOn, NumRetries: wrapperspb.UInt32(defaultRetries),
	})
)

// appProtocolOptions are the protocol options of a cluster to applications:
// the pool's, with defaultAppIdleTimeout when it sets no idle timeout.
func appProtocolOptions(proto ir.Protocol, pool *ir.ConnectionPool) (map[string]*anypb.Any, error) {
	if !proto.IsHTTP() {
		return nil, nil
	}
	if pool == nil || (pool.IdleTimeout == nil && pool.MaxRequestsPerConnection == 0) {
		return map[string]*anypb.Any{httpProtocolOptionsID: sharedAppIdleOptions[proto]}, nil
	}
	if pool.IdleTimeout == nil {
		withIdle := *pool
		withIdle.IdleTimeout = &defaultAppIdle
		pool = &withIdle
	}
	return protocolOptions(proto, pool)
}

// reachesApplications reports whether some endpoints of s have no sidecar,
// so that its clusters connect to applications themselves.
func reachesApplications(s *service) bool {
	for _, ep := range s.Endpoints {
		if ep != nil && ep.Identity == "" {
			return true
		}
	}
	return false
}

// inboundRoutes send an inbound HTTP port's requests to the application:
// idempotent methods with retries of resets, the others with the default
// retries.
func inboundRoutes(cluster string) []*routev3.Route {
	idempotent := clusterRoute("idempotent", sharedIdempotentMatch, cluster)
	idempotent.GetRoute().RetryPolicy = sharedInboundIdempotentRetries
	other := clusterRoute("default", matchAll(), cluster)
	other.GetRoute().RetryPolicy = sharedInboundRetries
	return []*routev3.Route{idempotent, other}
}

// idempotentDefaultRoute is the route before a service's default route
// that retries resets of idempotent requests, for services whose clusters
// reach applications without a sidecar; nil for others.
func (b *builder) idempotentDefaultRoute(s *service, port uint32) *routev3.Route {
	t := b.target(s.FQDN, port, "")
	if t == nil || !reachesApplications(s) {
		return nil
	}
	rt := clusterRoute("default-idempotent", sharedIdempotentMatch, t.name)
	rt.GetRoute().HashPolicy = hashPolicy([]*target{t})
	rt.GetRoute().RetryPolicy = sharedIdempotentDefaultRetries
	return rt
}
