package generate

import (
	"fmt"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// validator is implemented by every generated Envoy message.
type validator interface {
	ValidateAll() error
}

// pack validates m (an Any hides its contents from the outer ValidateAll) and
// wraps it in an Any, marshalled deterministically.
func pack(m proto.Message) (*anypb.Any, error) {
	if v, ok := m.(validator); ok {
		if err := v.ValidateAll(); err != nil {
			return nil, err
		}
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("marshal %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	return &anypb.Any{TypeUrl: typeURL(m), Value: b}, nil
}

// typeURLs caches the type URL of each message type packed.
var typeURLs sync.Map // protoreflect.FullName → string

func typeURL(m proto.Message) string {
	name := m.ProtoReflect().Descriptor().FullName()
	if u, ok := typeURLs.Load(name); ok {
		return u.(string)
	}
	u := "type.googleapis.com/" + string(name)
	typeURLs.Store(name, u)
	return u
}

// mustPack packs messages built only from constants; failure is a bug.
func mustPack(m proto.Message) *anypb.Any {
	a, err := pack(m)
	if err != nil {
		panic(fmt.Sprintf("generate: invalid constant config: %v", err))
	}
	return a
}

// ads is the config source for every dynamic resource: the ADS stream.
func ads() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ResourceApiVersion:    corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
	}
}

// socketAddress is ip:port over TCP.
func socketAddress(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Protocol:      corev3.SocketAddress_TCP,
		Address:       ip,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

func percent(p uint32) *typev3.FractionalPercent {
	return &typev3.FractionalPercent{Numerator: p, Denominator: typev3.FractionalPercent_HUNDRED}
}

func duration(d ir.Duration) *durationpb.Duration { return durationpb.New(d.Std()) }

// durationOr converts d, or returns nil when d is nil.
func durationOrNil(d *ir.Duration) *durationpb.Duration {
	if d == nil {
		return nil
	}
	return duration(*d)
}

// u32OrNil returns nil for zero, meaning "Envoy's default".
func u32OrNil(v uint32) *wrapperspb.UInt32Value {
	if v == 0 {
		return nil
	}
	return wrapperspb.UInt32(v)
}
