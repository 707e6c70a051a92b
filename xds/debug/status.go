package debug

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/capstanmesh/capstan/xds/debugapi"
	"github.com/capstanmesh/capstan/xds/server"
)

// typeURLs maps proxy-config's type names to xDS type URLs.
var typeURLs = map[string]string{
	debugapi.TypeListeners: resourcev3.ListenerType,
	debugapi.TypeRoutes:    resourcev3.RouteType,
	debugapi.TypeClusters:  resourcev3.ClusterType,
	debugapi.TypeEndpoints: resourcev3.EndpointType,
	debugapi.TypeSecrets:   resourcev3.SecretType,
}

// metaVersion is the node metadata key of the injector's version.
const metaVersion = "capstan.dev/version"

// proxyList converts the server's statuses, keeping the namespace's only
// when ns is set.
func proxyList(statuses []server.ProxyStatus, ns string) debugapi.ProxyList {
	out := debugapi.ProxyList{Proxies: []debugapi.Proxy{}}
	for _, st := range statuses {
		p := proxyOf(st)
		if ns != "" && p.Namespace != ns {
			continue
		}
		out.Proxies = append(out.Proxies, p)
	}
	slices.SortStableFunc(out.Proxies, func(a, b debugapi.Proxy) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Pod, b.Pod), cmp.Compare(a.Node, b.Node))
	})
	return out
}

func proxyOf(st server.ProxyStatus) debugapi.Proxy {
	p := debugapi.Proxy{Node: st.NodeID, Streams: st.Streams, Version: st.Metadata[metaVersion], Types: []debugapi.TypeState{}}
	p.Kind, _, _ = strings.Cut(st.NodeID, "~")
	if id, err := server.ParseNodeID(st.NodeID); err == nil {
		p.Namespace, p.Pod = id.Namespace, id.Pod
	}
	for _, name := range debugapi.TypeNames {
		typeURL := typeURLs[name]
		ts, sent := st.Types[typeURL]
		if _, served := st.Published[typeURL]; !served && !sent {
			continue
		}
		p.Types = append(p.Types, typeState(name, typeURL, st.Published[typeURL], ts))
	}
	return p
}

func typeState(name, typeURL, served string, ts server.TypeStatus) debugapi.TypeState {
	out := debugapi.TypeState{Type: name, TypeURL: typeURL, Served: served, Sent: ts.SentVersion, Acked: ts.AckedVersion}
	switch {
	case ts.Nacked:
		out.State = debugapi.StateNack
	case ts.SentNonce == "" && ts.AckedVersion == "":
		out.State = debugapi.StateNotSent
	case ts.AckedVersion == served:
		out.State = debugapi.StateSynced
	default:
		out.State = debugapi.StateStale
	}
	if n := ts.LastNack; n != nil {
		out.LastNack = &debugapi.Nack{Version: n.Version, Message: n.Message, At: n.At.UTC()}
	}
	return out
}

// nodeOfPod finds the node ID of a pod's proxy: a sidecar before a
// proxyless client, then by node ID.
func nodeOfPod(statuses []server.ProxyStatus, ns, pod string) (string, bool) {
	nodes := map[string]server.NodeType{}
	for _, st := range statuses {
		if id, err := server.ParseNodeID(st.NodeID); err == nil && id.Namespace == ns && id.Pod == pod {
			nodes[st.NodeID] = id.Type
		}
	}
	ids := slices.Sorted(maps.Keys(nodes))
	for _, id := range ids {
		if nodes[id] == server.NodeSidecar {
			return id, true
		}
	}
	if len(ids) > 0 {
		return ids[0], true
	}
	return "", false
}
