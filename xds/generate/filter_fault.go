package generate

import (
	"google.golang.org/protobuf/types/known/anypb"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	commonfaultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// faultFilter injects delays and aborts. It sits in every outbound chain with
// an empty configuration (a no-op) so that listeners do not change when a
// route gains a fault; each faulty route carries its own HTTPFault.
type faultFilter struct{}

var faultTypedConfig = mustPack(&faultv3.HTTPFault{})

func (faultFilter) Name() string { return filterFault }

func (faultFilter) HCMFilter() *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{
		Name:       filterFault,
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: faultTypedConfig},
	}
}

// PatchRoute sets the rule's delay and abort as the route's fault config.
func (f faultFilter) PatchRoute(rt *routev3.Route, in *ir.HTTPRoute) error {
	if in.Fault == nil || (in.Fault.Delay == nil && in.Fault.Abort == nil) {
		return nil
	}
	a, err := pack(httpFault(in.Fault))
	if err != nil {
		return err
	}
	if rt.TypedPerFilterConfig == nil {
		rt.TypedPerFilterConfig = map[string]*anypb.Any{}
	}
	rt.TypedPerFilterConfig[f.Name()] = a
	return nil
}

func httpFault(in *ir.Fault) *faultv3.HTTPFault {
	out := &faultv3.HTTPFault{}
	if d := in.Delay; d != nil {
		out.Delay = &commonfaultv3.FaultDelay{
			FaultDelaySecifier: &commonfaultv3.FaultDelay_FixedDelay{FixedDelay: duration(d.Delay)},
			Percentage:         percent(d.Percent),
		}
	}
	if a := in.Abort; a != nil {
		out.Abort = &faultv3.FaultAbort{
			ErrorType:  &faultv3.FaultAbort_HttpStatus{HttpStatus: a.HTTPStatus},
			Percentage: percent(a.Percent),
		}
	}
	return out
}
