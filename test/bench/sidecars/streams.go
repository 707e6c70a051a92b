package sidecars

import (
	"context"
	"fmt"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/anypb"
)

// runDelta runs one delta ADS stream until it fails or ctx is done.
func (p *proxy) runDelta(ctx context.Context, conn *grpc.ClientConn) error {
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		return fmt.Errorf("opening a delta ADS stream: %w", err)
	}
	node := &corev3.Node{Id: p.id}
	for i, t := range []string{resource.ClusterType, resource.ListenerType} {
		req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: t}
		if i == 0 {
			req.Node = node
		}
		if err := stream.Send(req); err != nil {
			return fmt.Errorf("subscribing to %s: %w", t, err)
		}
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("receiving: %w", err)
		}
		if err := p.handleDelta(stream, resp); err != nil {
			return err
		}
	}
}

func (p *proxy) handleDelta(stream discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient,
	resp *discoveryv3.DeltaDiscoveryResponse) error {
	typeURL := resp.GetTypeUrl()
	updated := make([]*info, 0, len(resp.GetResources()))
	for _, r := range resp.GetResources() {
		in, err := p.fleet.index.get(typeURL, r.GetResource())
		if err != nil {
			return err
		}
		updated = append(updated, in)
	}
	// As Envoy: subscribe to what the response references, then ACK it.
	for t, ch := range p.apply(typeURL, updated, resp.GetRemovedResources(), false) {
		req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: t, ResourceNamesSubscribe: ch.add, ResourceNamesUnsubscribe: ch.remove}
		if err := stream.Send(req); err != nil {
			return fmt.Errorf("subscribing to %s: %w", t, err)
		}
	}
	if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: typeURL, ResponseNonce: resp.GetNonce()}); err != nil {
		return fmt.Errorf("ACKing %s: %w", typeURL, err)
	}
	p.acked(typeURL, updated, time.Now())
	return nil
}

// sotwState is a state-of-the-world stream's last response per type, which
// every later request of the type repeats.
type sotwState struct {
	version, nonce map[string]string
}

// runSotW runs one state-of-the-world ADS stream until it fails or ctx is done.
func (p *proxy) runSotW(ctx context.Context, conn *grpc.ClientConn) error {
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return fmt.Errorf("opening an ADS stream: %w", err)
	}
	node := &corev3.Node{Id: p.id}
	for i, t := range []string{resource.ClusterType, resource.ListenerType} {
		req := &discoveryv3.DiscoveryRequest{TypeUrl: t}
		if i == 0 {
			req.Node = node
		}
		if err := stream.Send(req); err != nil {
			return fmt.Errorf("watching %s: %w", t, err)
		}
	}
	st := &sotwState{version: map[string]string{}, nonce: map[string]string{}}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("receiving: %w", err)
		}
		if err := p.handleSotW(stream, st, resp); err != nil {
			return err
		}
	}
}

func (p *proxy) handleSotW(stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient, st *sotwState,
	resp *discoveryv3.DiscoveryResponse) error {
	typeURL := resp.GetTypeUrl()
	updated, err := p.infos(typeURL, resp.GetResources())
	if err != nil {
		return err
	}
	st.version[typeURL], st.nonce[typeURL] = resp.GetVersionInfo(), resp.GetNonce()
	for t := range p.apply(typeURL, updated, nil, true) {
		req := &discoveryv3.DiscoveryRequest{TypeUrl: t, ResourceNames: p.wantedNames(t),
			VersionInfo: st.version[t], ResponseNonce: st.nonce[t]}
		if err := stream.Send(req); err != nil {
			return fmt.Errorf("watching %s: %w", t, err)
		}
	}
	ack := &discoveryv3.DiscoveryRequest{TypeUrl: typeURL, VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce()}
	if typeURL != resource.ClusterType && typeURL != resource.ListenerType {
		ack.ResourceNames = p.wantedNames(typeURL)
	}
	if err := stream.Send(ack); err != nil {
		return fmt.Errorf("ACKing %s: %w", typeURL, err)
	}
	p.acked(typeURL, updated, time.Now())
	return nil
}

func (p *proxy) infos(typeURL string, res []*anypb.Any) ([]*info, error) {
	out := make([]*info, 0, len(res))
	for _, r := range res {
		in, err := p.fleet.index.get(typeURL, r)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, nil
}
