package generate

import (
	"fmt"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/capstanmesh/capstan/xds/ir"
)

// headersFeature edits request and response headers: set overwrites, add
// appends, remove removes.
type headersFeature struct{}

func (headersFeature) name() string { return "header edits" }

func (headersFeature) fields() []routeField {
	return []routeField{
		{path: "requestHeaders", api: "headers.request", grpc: grpcNotSent, note: "gRPC's xDS support has no header edits"},
		{path: "responseHeaders", api: "headers.response", grpc: grpcNotSent, note: "gRPC's xDS support has no header edits"},
	}
}

// check refuses edits of pseudo-headers and Host, which Envoy does not allow.
func (headersFeature) check(in *ir.HTTPRoute) error {
	for _, ops := range []*ir.HeaderOps{in.RequestHeaders, in.ResponseHeaders} {
		if err := checkHeaderEdits(ops); err != nil {
			return err
		}
	}
	return nil
}

func (headersFeature) sidecar(r *sidecarRule) error {
	if req := r.in.RequestHeaders; req != nil {
		r.rt.RequestHeadersToAdd = headerValues(req)
		r.rt.RequestHeadersToRemove = cloneStrings(req.Remove)
	}
	if resp := r.in.ResponseHeaders; resp != nil {
		r.rt.ResponseHeadersToAdd = headerValues(resp)
		r.rt.ResponseHeadersToRemove = cloneStrings(resp.Remove)
	}
	return nil
}

func (headersFeature) grpc(*grpcRule) error { return nil }

// checkHeaderEdits refuses edits of pseudo-headers and Host, which Envoy does not allow.
func checkHeaderEdits(ops *ir.HeaderOps) error {
	if ops == nil {
		return nil
	}
	names := make([]string, 0, len(ops.Set)+len(ops.Add)+len(ops.Remove))
	for _, h := range append(append([]*ir.Header{}, ops.Set...), ops.Add...) {
		if h != nil {
			names = append(names, h.Name)
		}
	}
	for _, name := range append(names, ops.Remove...) {
		if strings.HasPrefix(name, ":") || strings.EqualFold(name, "host") {
			return fmt.Errorf("header %q may not be modified", name)
		}
	}
	return nil
}

func headerValues(ops *ir.HeaderOps) []*corev3.HeaderValueOption {
	out := make([]*corev3.HeaderValueOption, 0, len(ops.Set)+len(ops.Add))
	out = appendHeaders(out, ops.Set, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD)
	out = appendHeaders(out, ops.Add, corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD)
	if len(out) == 0 {
		return nil
	}
	return out
}

func appendHeaders(out []*corev3.HeaderValueOption, hs []*ir.Header, action corev3.HeaderValueOption_HeaderAppendAction) []*corev3.HeaderValueOption {
	for _, h := range hs {
		if h != nil {
			out = append(out, &corev3.HeaderValueOption{
				Header:       &corev3.HeaderValue{Key: h.Name, Value: h.Value},
				AppendAction: action,
			})
		}
	}
	return out
}
