package server

import (
	"context"
	"fmt"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// sotwWatch is an open state-of-the-world watch. It is answered as
// go-control-plane's ADS snapshot cache answers one: when the type's version
// differs from the request's, with every published resource (or the ones the
// request names, which must then cover them all), each the *anypb.Any the
// intern table marshalled once.
type sotwWatch struct {
	req *discoveryv3.DiscoveryRequest
	sub cachev3.Subscription
	out chan cachev3.Response
}

// CreateWatch implements cachev3.ConfigWatcher for state of the world.
func (c *resourceCache) CreateWatch(req *discoveryv3.DiscoveryRequest, sub cachev3.Subscription, out chan cachev3.Response) (func(), error) {
	nodeID := req.GetNode().GetId()
	w := &sotwWatch{req: req, sub: sub, out: out}
	n := c.lock(nodeID)
	defer c.unlock(nodeID, n)
	tv, ok := n.config[req.GetTypeUrl()]
	if !ok || (req.GetVersionInfo() == tv.version && !w.lacksAny(tv)) || (w.rejects(tv) && !w.lacksAny(tv)) {
		return c.open(nodeID, n, w), nil
	}
	w.respond(tv)
	return func() {}, nil
}

// rejects reports whether the request NACKs tv itself: its version_info is
// the last version the client accepted, but the stream was sent tv. Sending
// tv again would be rejected again, in a loop as fast as the stream goes;
// the watch waits for the next version instead.
func (w *sotwWatch) rejects(tv typeVersions) bool {
	if w.req.GetErrorDetail() == nil {
		return false
	}
	returned := w.sub.ReturnedResources()
	if len(returned) == 0 {
		return false
	}
	for _, v := range returned {
		if v != tv.version {
			return false
		}
	}
	return true
}

// Fetch implements cachev3.ConfigFetcher (unary xDS).
func (c *resourceCache) Fetch(ctx context.Context, req *discoveryv3.DiscoveryRequest) (cachev3.Response, error) {
	nodeID := req.GetNode().GetId()
	n := c.lock(nodeID)
	defer c.unlock(nodeID, n)
	if n.config == nil {
		return nil, fmt.Errorf("missing config for %q", nodeID)
	}
	tv := n.config[req.GetTypeUrl()]
	if req.GetVersionInfo() == tv.version {
		return nil, &types.SkipFetchError{}
	}
	return sotwResponse(req, tv), nil
}

func (w *sotwWatch) typeURL() string { return w.req.GetTypeUrl() }

// publish ignores rewarm: a state-of-the-world response carries every
// subscribed resource whenever the type's version changes.
func (w *sotwWatch) publish(tv typeVersions, _ []string) bool {
	if w.req.GetVersionInfo() == tv.version {
		return false
	}
	w.respond(tv)
	return true
}

// lacksAny reports whether tv has a resource the stream asks for and was not sent.
func (w *sotwWatch) lacksAny(tv typeVersions) bool {
	returned := w.sub.ReturnedResources()
	if w.sub.IsWildcard() {
		for name := range tv.resources {
			if _, ok := returned[name]; !ok {
				return true
			}
		}
		return false
	}
	for name := range w.sub.SubscribedResources() {
		if _, ok := returned[name]; !ok {
			if _, ok := tv.resources[name]; ok {
				return true
			}
		}
	}
	return false
}

// respond sends the response, unless the request names resources and tv
// has one it does not name: in ADS the client then asks again.
func (w *sotwWatch) respond(tv typeVersions) {
	if names := w.req.GetResourceNames(); len(names) > 0 {
		set := make(map[string]struct{}, len(names))
		for _, name := range names {
			set[name] = struct{}{}
		}
		for name := range tv.resources {
			if _, ok := set[name]; !ok {
				return
			}
		}
	}
	w.out <- sotwResponse(w.req, tv)
}

// sotwResponse is tv's resources, those the request names when it names
// any, as a state-of-the-world response.
func sotwResponse(req *discoveryv3.DiscoveryRequest, tv typeVersions) *cachev3.PassthroughResponse {
	var set map[string]struct{}
	if names := req.GetResourceNames(); len(names) > 0 {
		set = make(map[string]struct{}, len(names))
		for _, name := range names {
			set[name] = struct{}{}
		}
	}
	resources := make([]*anypb.Any, 0, len(tv.resources))
	returned := make(map[string]string, len(tv.resources))
	for name, r := range tv.resources {
		if _, ok := set[name]; ok || set == nil {
			resources = append(resources, r.GetResource())
			returned[name] = tv.version
		}
	}
	return &cachev3.PassthroughResponse{
		Request: req,
		DiscoveryResponse: &discoveryv3.DiscoveryResponse{
			VersionInfo: tv.version,
			Resources:   resources,
			TypeUrl:     req.GetTypeUrl(),
		},
		ReturnedResources: returned,
	}
}
