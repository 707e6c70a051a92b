package xdsclient

import (
	"testing"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/anypb"
)

// Delta is an incremental (delta) ADS client.
type Delta struct {
	*base
	stream discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	sendMu chan struct{}
}

// DialDelta opens a delta ADS stream to addr as nodeID.
func DialDelta(t testing.TB, addr, nodeID string) *Delta {
	t.Helper()
	return DialDeltaWith(t, addr, nodeID)
}

// DialDeltaWith is DialDelta with extra dial options, such as
// WithBearerToken or transport credentials.
func DialDeltaWith(t testing.TB, addr, nodeID string, opts ...grpc.DialOption) *Delta {
	t.Helper()
	b := dial(t, addr, nodeID, opts...)
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(b.conn).DeltaAggregatedResources(contextFor(t))
	if err != nil {
		t.Fatalf("opening a delta ADS stream: %v", err)
	}
	d := &Delta{base: b, stream: stream, sendMu: make(chan struct{}, 1)}
	go d.receive()
	return d
}

// Subscribe asks for resources of a type; no names means every resource (wildcard).
func (d *Delta) Subscribe(t testing.TB, typeURL string, names ...string) {
	t.Helper()
	if err := d.send(&discoveryv3.DeltaDiscoveryRequest{Node: d.node, TypeUrl: typeURL, ResourceNamesSubscribe: names}); err != nil {
		t.Fatalf("subscribing to %s: %v", typeURL, err)
	}
}

func (d *Delta) send(req *discoveryv3.DeltaDiscoveryRequest) error {
	d.sendMu <- struct{}{}
	defer func() { <-d.sendMu }()
	return d.stream.Send(req)
}

// receive applies each response to the state and ACKs it.
func (d *Delta) receive() {
	for {
		resp, err := d.stream.Recv()
		if err != nil {
			d.fail(err)
			return
		}
		d.apply(resp)
		if err := d.send(&discoveryv3.DeltaDiscoveryRequest{Node: d.node, TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()}); err != nil {
			d.fail(err)
			return
		}
	}
}

func (d *Delta) apply(resp *discoveryv3.DeltaDiscoveryResponse) {
	d.mu.Lock()
	defer d.mu.Unlock()
	byName := d.state[resp.GetTypeUrl()]
	if byName == nil {
		byName = map[string]*anypb.Any{}
		d.state[resp.GetTypeUrl()] = byName
	}
	rec := Response{TypeURL: resp.GetTypeUrl(), Removed: resp.GetRemovedResources()}
	for _, r := range resp.GetResources() {
		byName[r.GetName()] = r.GetResource()
		rec.Names = append(rec.Names, r.GetName())
	}
	for _, name := range resp.GetRemovedResources() {
		delete(byName, name)
	}
	d.responses = append(d.responses, rec)
}

// TrySubscribe is Subscribe returning the send error instead of failing the
// test, for streams the server may already have refused.
func (d *Delta) TrySubscribe(typeURL string, names ...string) error {
	return d.send(&discoveryv3.DeltaDiscoveryRequest{Node: d.node, TypeUrl: typeURL, ResourceNamesSubscribe: names})
}
