package generate

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// Every cluster to a mesh service carries an UpstreamTlsContext that differs
// from the others only in its SANs and SNI; marshalling a thousand of them is
// a large share of a big mesh's generation time. upstreamTLSAny encodes them
// from pre-marshalled constant parts instead. The bytes are exactly what
// deterministic proto.Marshal of upstreamTLSContext produces (a test checks
// it), and the constant parts are validated once, here.

// upstreamTLSContext is the context as a message: the reference the fast
// encoding is tested against.
func upstreamTLSContext(sans []string, sni string) *tlsv3.UpstreamTlsContext {
	return &tlsv3.UpstreamTlsContext{CommonTlsContext: commonTLS(sans, meshALPN), Sni: sni}
}

// upstreamTLSEncoding holds the constant parts and field numbers.
type upstreamTLSEncoding struct {
	// common is CommonTlsContext's fields before combined_validation_context.
	common []byte
	// rootCA is CombinedCertificateValidationContext's validation_context_sds_secret_config.
	rootCA []byte
	// typeURL is the Any type URL of UpstreamTlsContext.
	typeURL string
	// Field numbers, from the descriptors.
	commonField, sniField, combinedField, defaultField, sanField, sanTypeField, matcherField, exactField protowire.Number
}

var upstreamTLS = newUpstreamTLSEncoding()

func newUpstreamTLSEncoding() *upstreamTLSEncoding {
	ref := upstreamTLSContext([]string{"spiffe://example.org/ns/a/sa/b"}, "a.example.org")
	if err := ref.ValidateAll(); err != nil {
		panic(fmt.Sprintf("generate: invalid constant TLS context: %v", err))
	}
	ctx := ref.CommonTlsContext
	combined := ctx.GetCombinedValidationContext()
	return &upstreamTLSEncoding{
		common: mustMarshal(&tlsv3.CommonTlsContext{
			TlsParams: ctx.TlsParams, TlsCertificateSdsSecretConfigs: ctx.TlsCertificateSdsSecretConfigs, AlpnProtocols: ctx.AlpnProtocols,
		}),
		rootCA:        mustMarshal(&tlsv3.CommonTlsContext_CombinedCertificateValidationContext{ValidationContextSdsSecretConfig: combined.ValidationContextSdsSecretConfig}),
		typeURL:       typeURL(ref),
		commonField:   fieldNumber(ref, "common_tls_context"),
		sniField:      fieldNumber(ref, "sni"),
		combinedField: fieldNumber(ctx, "combined_validation_context"),
		defaultField:  fieldNumber(combined, "default_validation_context"),
		sanField:      fieldNumber(combined.DefaultValidationContext, "match_typed_subject_alt_names"),
		sanTypeField:  fieldNumber(&tlsv3.SubjectAltNameMatcher{}, "san_type"),
		matcherField:  fieldNumber(&tlsv3.SubjectAltNameMatcher{}, "matcher"),
		exactField:    fieldNumber(&matcherv3.StringMatcher{}, "exact"),
	}
}

// any encodes the context for the SPIFFE IDs and SNI of one service into a
// new Any (the builder uses upstreamTLSSocket instead).
func (e *upstreamTLSEncoding) any(sans []string, sni string) (*anypb.Any, error) {
	if err := e.check(sni); err != nil {
		return nil, err
	}
	l := e.layout(sans, sni)
	return &anypb.Any{TypeUrl: e.typeURL, Value: e.encode(make([]byte, 0, l.size), sans, sni, l)}, nil
}

// check applies the only rule ValidateAll would apply to these inputs:
// SNI's 255-byte limit.
func (e *upstreamTLSEncoding) check(sni string) error {
	if len(sni) > 255 {
		return fmt.Errorf("invalid UpstreamTlsContext.Sni: %q is longer than 255 bytes", sni)
	}
	return nil
}

// tlsLayout is the encoded length of the nested messages of one context,
// and its total size.
type tlsLayout struct {
	validation int // CertificateValidationContext
	combined   int // CombinedCertificateValidationContext
	common     int // CommonTlsContext
	size       int // UpstreamTlsContext
}

func (e *upstreamTLSEncoding) layout(sans []string, sni string) tlsLayout {
	var l tlsLayout
	for _, id := range sans {
		l.validation += protowire.SizeTag(e.sanField) + protowire.SizeBytes(e.sanSize(id))
	}
	l.combined = protowire.SizeTag(e.defaultField) + protowire.SizeBytes(l.validation) + len(e.rootCA)
	l.common = len(e.common) + protowire.SizeTag(e.combinedField) + protowire.SizeBytes(l.combined)
	l.size = protowire.SizeTag(e.commonField) + protowire.SizeBytes(l.common)
	if sni != "" {
		l.size += protowire.SizeTag(e.sniField) + protowire.SizeBytes(len(sni))
	}
	return l
}

// sizeEstimate is a little more than layout(sans, sni).size, without the work.
func (e *upstreamTLSEncoding) sizeEstimate(sans []string, sni string) int {
	n := len(e.common) + len(e.rootCA) + len(sni) + 32
	for _, id := range sans {
		n += len(id) + 16
	}
	return n
}

// encode appends the context, laid out as l, to out.
func (e *upstreamTLSEncoding) encode(out []byte, sans []string, sni string, l tlsLayout) []byte {
	out = appendLen(out, e.commonField, l.common)
	out = append(out, e.common...)
	out = appendLen(out, e.combinedField, l.combined)
	out = appendLen(out, e.defaultField, l.validation)
	for _, id := range sans {
		out = appendLen(out, e.sanField, e.sanSize(id))
		out = e.appendSAN(out, id)
	}
	out = append(out, e.rootCA...)
	if sni != "" {
		out = protowire.AppendTag(out, e.sniField, protowire.BytesType)
		out = protowire.AppendString(out, sni)
	}
	return out
}

// appendLen starts a length-delimited field of n bytes.
func appendLen(b []byte, field protowire.Number, n int) []byte {
	b = protowire.AppendTag(b, field, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(n))
}

// sanSize is the encoded size of the SubjectAltNameMatcher appendSAN writes.
func (e *upstreamTLSEncoding) sanSize(id string) int {
	exact := protowire.SizeTag(e.exactField) + protowire.SizeBytes(len(id))
	return protowire.SizeTag(e.sanTypeField) + protowire.SizeVarint(uint64(tlsv3.SubjectAltNameMatcher_URI)) +
		protowire.SizeTag(e.matcherField) + protowire.SizeBytes(exact)
}

// appendSAN writes a SubjectAltNameMatcher of type URI matching id exactly.
func (e *upstreamTLSEncoding) appendSAN(b []byte, id string) []byte {
	b = protowire.AppendTag(b, e.sanTypeField, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(tlsv3.SubjectAltNameMatcher_URI))
	b = appendLen(b, e.matcherField, protowire.SizeTag(e.exactField)+protowire.SizeBytes(len(id)))
	b = protowire.AppendTag(b, e.exactField, protowire.BytesType)
	return protowire.AppendString(b, id)
}

func fieldNumber(m proto.Message, name protoreflect.Name) protowire.Number {
	f := m.ProtoReflect().Descriptor().Fields().ByName(name)
	if f == nil {
		panic(fmt.Sprintf("generate: %s has no field %s", m.ProtoReflect().Descriptor().FullName(), name))
	}
	return f.Number()
}

func mustMarshal(m proto.Message) []byte {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("generate: marshal constant %s: %v", m.ProtoReflect().Descriptor().FullName(), err))
	}
	return b
}
