package generate

import (
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// routerFilter forwards requests upstream; it is the last filter of every chain.
type routerFilter struct{}

var routerTypedConfig = mustPack(&routerv3.Router{})

func (routerFilter) Name() string { return filterRouter }

func (routerFilter) HCMFilter() *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{
		Name:       filterRouter,
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: routerTypedConfig},
	}
}
