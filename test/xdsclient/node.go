package xdsclient

import (
	"google.golang.org/protobuf/types/known/structpb"
)

// SetNodeMetadata sets string fields of the node's metadata, as a proxy's
// bootstrap does; call it before the first Subscribe or Watch (the node is
// sent with every request, and servers read it from the first).
func (b *base) SetNodeMetadata(md map[string]string) {
	fields := make(map[string]*structpb.Value, len(md))
	for k, v := range md {
		fields[k] = structpb.NewStringValue(v)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.node.Metadata = &structpb.Struct{Fields: fields}
}

// Close closes the client's connection, as a proxy that exits does.
func (b *base) Close() error { return b.conn.Close() }
