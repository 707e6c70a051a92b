package server

import (
	"maps"
	"time"
)

// ProxyStatus is what the server knows about one xDS client (node ID).
type ProxyStatus struct {
	NodeID string
	// Streams is the number of open xDS streams of this node.
	Streams int
	// Published maps type URL to the version the server currently serves
	// this node; empty when no snapshot is set.
	Published map[string]string
	// Types maps type URL to what this node was sent and how it answered.
	Types map[string]TypeStatus
	// Metadata holds the string fields of the node metadata whose keys
	// start with "capstan.dev/" (see nodeMetadata for the limits), as sent
	// by the stream that identified the node most recently.
	Metadata map[string]string
}

// TypeStatus is the xDS exchange of one node for one resource type.
type TypeStatus struct {
	// SentVersion and SentNonce are those of the last response sent. For
	// delta, the version is the response's system_version_info.
	SentVersion string
	SentNonce   string
	// AckedVersion and AckedNonce are those of the last ACKed response.
	AckedVersion string
	AckedNonce   string
	AckedAt      time.Time
	// AckedResources maps resource name to the content version the node has
	// ACKed. Nil when unknown (a state-of-the-world response for a version
	// the server no longer holds).
	AckedResources map[string]string
	// Nacked is true when the node's latest answer to the latest response
	// was a NACK; an ACK clears it.
	Nacked bool
	// LastNack is the latest NACK, kept after later ACKs.
	LastNack *Nack
}

// Nack is a rejected response, as reported by the client.
type Nack struct {
	// Version is the version of the rejected response; empty when the NACK
	// named a nonce that was not the latest one sent on its stream.
	Version string
	Nonce   string
	// Code and Message are the request's error_detail.
	Code    int32
	Message string
	At      time.Time
}

// InSync reports whether the node has config published and has ACKed, for
// every type it was sent, the version currently published.
func (p ProxyStatus) InSync() bool {
	sent := 0
	for typeURL, ts := range p.Types {
		if ts.SentNonce == "" {
			continue
		}
		sent++
		if ts.Nacked || ts.AckedVersion != p.Published[typeURL] {
			return false
		}
	}
	return sent > 0 && len(p.Published) > 0
}

// deepCopy returns a copy sharing no maps or pointers with p.
func (p ProxyStatus) deepCopy() ProxyStatus {
	out := p
	out.Published = maps.Clone(p.Published)
	out.Metadata = maps.Clone(p.Metadata)
	out.Types = make(map[string]TypeStatus, len(p.Types))
	for typeURL, ts := range p.Types {
		out.Types[typeURL] = ts.deepCopy()
	}
	return out
}

func (t TypeStatus) deepCopy() TypeStatus {
	out := t
	out.AckedResources = maps.Clone(t.AckedResources)
	if t.LastNack != nil {
		n := *t.LastNack
		out.LastNack = &n
	}
	return out
}

// AckState is the ACK summary of one node: whether it is in sync and, when
// its latest answer for a type was a NACK, that type and the NACK.
type AckState struct {
	InSync bool
	// NackType is the type URL of a type whose latest answer was a NACK
	// (the smallest such URL), or empty.
	NackType string
	Nack     Nack
}

// ackState summarises p without copying its maps.
func (p ProxyStatus) ackState() AckState {
	st := AckState{InSync: p.InSync()}
	for typeURL, ts := range p.Types {
		if !ts.Nacked || ts.LastNack == nil || (st.NackType != "" && st.NackType < typeURL) {
			continue
		}
		st.NackType, st.Nack = typeURL, *ts.LastNack
	}
	return st
}
