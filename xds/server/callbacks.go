package server

import (
	"context"
	"maps"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// callbacks feed go-control-plane's stream events (state of the world and
// delta) into the tracker. One value per go-control-plane server instance.
type callbacks struct {
	instance int64
	tracker  *tracker
	// lookup returns the resource versions the server published to a node
	// for a type and version, or nil when it no longer holds them.
	lookup func(node, typeURL, version string) map[string]string
	// refuseFetch, when set, refuses every unary Fetch (streams are
	// authenticated, Fetch is not): it counts, logs and returns the error.
	refuseFetch func(ctx context.Context, method string) error
	// observer counts the responses sent.
	observer Observer
}

var _ serverv3.Callbacks = (*callbacks)(nil)

func (c *callbacks) key(delta bool, id int64) streamKey {
	return streamKey{instance: c.instance, delta: delta, id: id}
}

// OnStreamOpen implements sotw.Callbacks.
func (c *callbacks) OnStreamOpen(_ context.Context, id int64, _ string) error {
	c.tracker.opened(c.key(false, id))
	return nil
}

// OnStreamClosed implements sotw.Callbacks.
func (c *callbacks) OnStreamClosed(id int64, _ *corev3.Node) {
	c.tracker.closed(c.key(false, id))
}

// OnStreamRequest implements sotw.Callbacks.
func (c *callbacks) OnStreamRequest(id int64, req *discoveryv3.DiscoveryRequest) error {
	c.tracker.requested(c.key(false, id), reply{
		node:        req.GetNode().GetId(),
		typeURL:     req.GetTypeUrl(),
		nonce:       req.GetResponseNonce(),
		version:     req.GetVersionInfo(),
		errorDetail: req.GetErrorDetail(),
		metadata:    nodeMetadata(req.GetNode()),
	})
	return nil
}

// OnStreamResponse implements sotw.Callbacks. req is the request the
// response answers; go-control-plane has filled in its node.
func (c *callbacks) OnStreamResponse(_ context.Context, id int64, req *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
	node := req.GetNode().GetId()
	c.observer.Pushed(shortType(resp.GetTypeUrl()))
	c.tracker.responded(c.key(false, id), node, resp.GetTypeUrl(), sentResponse{
		nonce:     resp.GetNonce(),
		version:   resp.GetVersionInfo(),
		resources: c.sotwResources(node, req, resp),
	})
}

// sotwResources are the resource versions in a state-of-the-world
// response: the published set for its version, narrowed to the requested
// names as the snapshot cache does.
func (c *callbacks) sotwResources(node string, req *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) map[string]string {
	all := c.lookup(node, resp.GetTypeUrl(), resp.GetVersionInfo())
	if all == nil || len(req.GetResourceNames()) == 0 {
		return all
	}
	out := make(map[string]string, len(req.GetResourceNames()))
	for _, name := range req.GetResourceNames() {
		if v, ok := all[name]; ok {
			out[name] = v
		}
	}
	return out
}

// OnDeltaStreamOpen implements delta.Callbacks.
func (c *callbacks) OnDeltaStreamOpen(_ context.Context, id int64, _ string) error {
	c.tracker.opened(c.key(true, id))
	return nil
}

// OnDeltaStreamClosed implements delta.Callbacks.
func (c *callbacks) OnDeltaStreamClosed(id int64, _ *corev3.Node) {
	c.tracker.closed(c.key(true, id))
}

// OnStreamDeltaRequest implements delta.Callbacks. Only a stream's first
// request is sure to carry the node; the tracker remembers it per stream.
func (c *callbacks) OnStreamDeltaRequest(id int64, req *discoveryv3.DeltaDiscoveryRequest) error {
	c.tracker.requested(c.key(true, id), reply{
		node:        req.GetNode().GetId(),
		typeURL:     req.GetTypeUrl(),
		nonce:       req.GetResponseNonce(),
		errorDetail: req.GetErrorDetail(),
		metadata:    nodeMetadata(req.GetNode()),
	})
	return nil
}

// Limits of the node metadata the tracker keeps (ProxyStatus.Metadata).
const (
	nodeMetadataPrefix   = "capstan.dev/"
	nodeMetaVersion      = nodeMetadataPrefix + "version"
	maxNodeMetadataKeys  = 8
	maxNodeMetadataValue = 1024
)

// nodeMetadata returns a node's "capstan.dev/" string metadata: at most
// maxNodeMetadataKeys keys (the first in key order), values longer than
// maxNodeMetadataValue left out. Nil without a node or such metadata.
func nodeMetadata(node *corev3.Node) map[string]string {
	fields := node.GetMetadata().GetFields()
	var out map[string]string
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		v, ok := fields[k].GetKind().(*structpb.Value_StringValue)
		if !ok || !strings.HasPrefix(k, nodeMetadataPrefix) || len(v.StringValue) > maxNodeMetadataValue {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v.StringValue
		if len(out) == maxNodeMetadataKeys {
			break
		}
	}
	return out
}

// OnStreamDeltaResponse implements delta.Callbacks.
func (c *callbacks) OnStreamDeltaResponse(id int64, req *discoveryv3.DeltaDiscoveryRequest, resp *discoveryv3.DeltaDiscoveryResponse) {
	c.observer.Pushed(shortType(resp.GetTypeUrl()))
	updated := make(map[string]string, len(resp.GetResources()))
	for _, r := range resp.GetResources() {
		updated[r.GetName()] = r.GetVersion()
	}
	c.tracker.responded(c.key(true, id), req.GetNode().GetId(), resp.GetTypeUrl(), sentResponse{
		nonce:     resp.GetNonce(),
		version:   resp.GetSystemVersionInfo(),
		resources: updated,
		removed:   resp.GetRemovedResources(),
		delta:     true,
	})
}

// OnFetchRequest implements rest.Callbacks. With authentication on it
// refuses the request: the unary interceptor should have refused it
// already, this is the second line.
func (c *callbacks) OnFetchRequest(ctx context.Context, req *discoveryv3.DiscoveryRequest) error {
	if c.refuseFetch != nil {
		return c.refuseFetch(ctx, "Fetch "+req.GetTypeUrl())
	}
	return nil
}

// OnFetchResponse implements rest.Callbacks; REST is not served.
func (c *callbacks) OnFetchResponse(*discoveryv3.DiscoveryRequest, *discoveryv3.DiscoveryResponse) {}
