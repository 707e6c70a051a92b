package xdsclient

import (
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// resourceName reads the name of a resource sent in a state-of-the-world response.
func resourceName(a *anypb.Any) string {
	msg, err := a.UnmarshalNew()
	if err != nil {
		return ""
	}
	r, ok := msg.(types.Resource)
	if !ok {
		return ""
	}
	return cache.GetResourceName(r)
}
