package generate

import (
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/capstanmesh/capstan/xds/ir"
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

// PatchRoute does nothing: the route action is the router's configuration.
func (routerFilter) PatchRoute(*routev3.Route, *ir.HTTPRoute) error { return nil }
