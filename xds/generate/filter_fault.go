package generate

import (
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// faultFilter injects delays and aborts. It sits in every outbound chain with
// an empty configuration (a no-op) so that listeners do not change when a
// route gains a fault; each faulty route carries its own HTTPFault (the
// fault route feature, route_feature_fault.go).
type faultFilter struct{}

var faultTypedConfig = mustPack(&faultv3.HTTPFault{})

func (faultFilter) Name() string { return filterFault }

func (faultFilter) HCMFilter() *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{
		Name:       filterFault,
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: faultTypedConfig},
	}
}
