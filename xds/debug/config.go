package debug

import (
	"encoding/json"
	"fmt"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/capstanmesh/capstan/xds/debugapi"
	"github.com/capstanmesh/capstan/xds/server"
)

// renderConfig is the answer of PathConfig for one type of a node's config.
func renderConfig(node, typ, typeURL string, cfg server.PublishedConfig) (debugapi.Config, error) {
	s := summarizers[typ]
	out := debugapi.Config{Node: node, Type: typ, Version: cfg.Versions[typeURL], Columns: s.columns,
		Resources: make([]debugapi.Resource, 0, len(cfg.Resources[typeURL]))}
	for _, r := range cfg.Resources[typeURL] {
		res, err := renderResource(r, s)
		if err != nil {
			return debugapi.Config{}, err
		}
		res.Version = cfg.ResourceVersions[typeURL][res.Name]
		out.Resources = append(out.Resources, res)
	}
	return out, nil
}

func renderResource(r types.Resource, s summarizer) (debugapi.Resource, error) {
	name := cachev3.GetResourceName(r)
	if s.redact != nil {
		r = s.redact(r)
	}
	a, err := anypb.New(r)
	if err != nil {
		return debugapi.Resource{}, fmt.Errorf("wrapping %q: %w", name, err)
	}
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(a)
	if err != nil {
		return debugapi.Resource{}, fmt.Errorf("encoding %q: %w", name, err)
	}
	// Re-encoded with sorted keys (protojson's spacing is deliberately
	// unstable), without any key material wherever it appears.
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		return debugapi.Resource{}, fmt.Errorf("encoding %q: %w", name, err)
	}
	if b, err = json.Marshal(scrub(doc)); err != nil {
		return debugapi.Resource{}, fmt.Errorf("encoding %q: %w", name, err)
	}
	return debugapi.Resource{Name: name, Summary: s.summary(r), Config: b}, nil
}

// summarizer knows a type's table columns and, for secrets, what may be shown.
type summarizer struct {
	columns []string
	summary func(proto.Message) []string
	// redact returns what may leave the operator of a resource.
	redact func(types.Resource) types.Resource
}

// secretFields are the Envoy fields that hold key material or passwords, in
// any message: TlsCertificate's private_key, password and
// private_key_provider, TlsSessionTicketKeys' keys, GenericSecret's secret
// (as generic_secret), HMAC and OAuth2 secrets.
var secretFields = map[string]bool{
	"private_key": true, "password": true, "private_key_provider": true,
	"session_ticket_keys": true, "generic_secret": true, "hmac_secret": true, "token_secret": true,
}

// scrub removes secretFields at every depth of a decoded JSON document, as
// a second line behind redactSecret: no other type carries keys today.
func scrub(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if secretFields[k] {
				delete(t, k)
				continue
			}
			t[k] = scrub(e)
		}
	case []any:
		for i, e := range t {
			t[i] = scrub(e)
		}
	}
	return v
}
