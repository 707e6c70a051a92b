package xdsclient

import (
	"testing"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/anypb"
)

// SotW is a state-of-the-world ADS client.
type SotW struct {
	*base
	stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	sendMu chan struct{}
	// names remembers each type's subscription, repeated in ACKs as the protocol requires.
	names map[string][]string
	// rejects maps a type URL to the message its responses are NACKed with;
	// rejectOnce, to the message its next response only is NACKed with.
	rejects    map[string]string
	rejectOnce map[string]string
}

// DialSotW opens a state-of-the-world ADS stream to addr as nodeID.
func DialSotW(t testing.TB, addr, nodeID string) *SotW {
	t.Helper()
	return DialSotWWith(t, addr, nodeID)
}

// DialSotWWith is DialSotW with extra dial options, such as
// WithBearerToken or transport credentials.
func DialSotWWith(t testing.TB, addr, nodeID string, opts ...grpc.DialOption) *SotW {
	t.Helper()
	b := dial(t, addr, nodeID, opts...)
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(b.conn).StreamAggregatedResources(contextFor(t))
	if err != nil {
		t.Fatalf("opening an ADS stream: %v", err)
	}
	s := &SotW{base: b, stream: stream, sendMu: make(chan struct{}, 1), names: map[string][]string{}, rejects: map[string]string{}, rejectOnce: map[string]string{}}
	go s.receive()
	return s
}

// Watch asks for resources of a type; no names means every resource (wildcard).
func (s *SotW) Watch(t testing.TB, typeURL string, names ...string) {
	t.Helper()
	s.mu.Lock()
	s.names[typeURL] = names
	s.mu.Unlock()
	if err := s.send(&discoveryv3.DiscoveryRequest{Node: s.node, TypeUrl: typeURL, ResourceNames: names}); err != nil {
		t.Fatalf("watching %s: %v", typeURL, err)
	}
}

func (s *SotW) send(req *discoveryv3.DiscoveryRequest) error {
	s.sendMu <- struct{}{}
	defer func() { <-s.sendMu }()
	return s.stream.Send(req)
}

func (s *SotW) receive() {
	for {
		resp, err := s.stream.Recv()
		if err != nil {
			s.fail(err)
			return
		}
		if err := s.send(s.answer(resp)); err != nil {
			s.fail(err)
			return
		}
	}
}

// Reject makes the client NACK every later response of a type with message,
// as Envoy does with a config it refuses: the state of that type is kept.
func (s *SotW) Reject(typeURL, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejects[typeURL] = message
}

// NackNext makes the client NACK the next response of a type only, with
// message; it ACKs the later ones (the server sends the next version, not
// the rejected one again).
func (s *SotW) NackNext(typeURL, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejectOnce[typeURL] = message
}

// answer applies resp and returns its ACK, or returns its NACK.
func (s *SotW) answer(resp *discoveryv3.DiscoveryResponse) *discoveryv3.DiscoveryRequest {
	s.mu.Lock()
	msg, reject := s.rejects[resp.GetTypeUrl()]
	if once, ok := s.rejectOnce[resp.GetTypeUrl()]; ok && !reject {
		msg, reject = once, true
		delete(s.rejectOnce, resp.GetTypeUrl())
	}
	names := s.names[resp.GetTypeUrl()]
	s.mu.Unlock()
	req := &discoveryv3.DiscoveryRequest{Node: s.node, TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce(), ResourceNames: names}
	if reject {
		req.ErrorDetail = &rpcstatus.Status{Code: int32(codes.InvalidArgument), Message: msg}
		return req
	}
	s.apply(resp)
	req.VersionInfo = resp.GetVersionInfo()
	return req
}

// apply replaces the type's state with the response and returns the subscription to ACK with.
func (s *SotW) apply(resp *discoveryv3.DiscoveryResponse) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	byName := map[string]*anypb.Any{}
	rec := Response{TypeURL: resp.GetTypeUrl()}
	for _, r := range resp.GetResources() {
		name := resourceName(r)
		byName[name] = r
		rec.Names = append(rec.Names, name)
	}
	s.state[resp.GetTypeUrl()] = byName
	s.responses = append(s.responses, rec)
	return s.names[resp.GetTypeUrl()]
}
