package runner

import (
	"errors"
	"strings"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/capstanmesh/capstan/xds/generate"
	"github.com/capstanmesh/capstan/xds/ir"
)

// A sidecar's config has two parts (docs/generate.md, "Shared config"):
//
//   - the outbound part (clusters, load assignments, route configurations and
//     listeners of the mesh's services) depends on the mesh and on the proxy
//     only through its namespace and its scope (ir.Scope: the declared
//     dependencies, docs/scoping.md). It is generated once per namespace and
//     scope that has a sidecar to update, from the first of them without its
//     inbound ports and probes, and every sidecar with that namespace and
//     scope gets the same messages;
//   - the proxy part (inbound listener and clusters, probe routes, the fixed
//     listeners) depends on the proxy and the mesh-wide settings only. It is
//     generated from a mesh without services.
//
// The union, proxy part first, is exactly what generate.ForProxy returns for
// the proxy (TestSharedConfigEqualsForProxy). Across pushes, messages whose
// inputs did not change are replaced by the ones published before (memo), so
// the server, which knows messages by pointer, validates and hashes only what
// changed.

// outboundPart is the outbound part of a namespace and scope (outboundKey),
// or why it could not be generated.
type outboundPart struct {
	key  string
	rep  *ir.Proxy
	res  *generate.Resources
	errs generate.Errors
	err  error
}

// proxyPart is a proxy's own part and the key of the inputs it was generated from.
type proxyPart struct {
	key string
	// content is contentKey(res) ("" when not computed): sidecars whose
	// own parts have equal content share one (groups.go).
	content string
	res     *generate.Resources
	errs    generate.Errors
	err     error
}

// generateOutbound generates the outbound part for rep's namespace and scope.
func generateOutbound(mesh *ir.Mesh, rep *ir.Proxy) *outboundPart {
	p := *rep
	p.Inbound, p.AppProbes = nil, nil
	out := &outboundPart{key: outboundKey(rep), rep: rep}
	out.res, out.errs, out.err = generateSplit(mesh, &p)
	return out
}

// generateProxyPart generates the proxy's own part from a mesh without services.
func generateProxyPart(bare *ir.Mesh, p *ir.Proxy, key string) proxyPart {
	part := proxyPart{key: key}
	part.res, part.errs, part.err = generateSplit(bare, p)
	if part.err == nil {
		part.content = contentKey(part.res)
	}
	return part
}

// generateSplit is generate.ForProxy with its per-object errors apart.
func generateSplit(mesh *ir.Mesh, p *ir.Proxy) (*generate.Resources, generate.Errors, error) {
	res, err := generate.ForProxy(mesh, p)
	var perObject generate.Errors
	if err != nil && !errors.As(err, &perObject) {
		return nil, nil, err
	}
	return res, perObject, nil
}

// bareMesh is the mesh without services and proxies: what a proxy part
// depends on. It copies the whole struct, so a mesh-wide setting added to
// ir.Mesh later is part of the proxy part's key without anyone listing it.
func bareMesh(mesh *ir.Mesh) *ir.Mesh {
	bare := *mesh
	bare.Services, bare.Proxies = nil, nil
	return &bare
}

// assembly is a sidecar's config and the parts it was assembled from.
type assembly struct {
	own      *generate.Resources
	outbound *outboundPart
	res      *generate.Resources
	// byType is res.ByType(), made once for the sidecars that share the
	// assembly (read-only).
	byType map[string][]types.Resource
}

// assembleFrom is the proxy part plus the outbound resources of names the
// proxy part does not have, each list sorted by name as generate sorts it.
// A list whose parts are those prev was assembled from is prev's list:
// after an endpoint change only the load assignments are merged again, and
// the server finds every other list unchanged by comparing pointers.
func assembleFrom(prev *assembly, own *generate.Resources, outbound *outboundPart) *assembly {
	shared := outbound.res
	a := &assembly{own: own, outbound: outbound, res: &generate.Resources{Secrets: own.Secrets}}
	var before *generate.Resources
	if prev != nil && prev.own == own && prev.outbound.res != nil {
		before = prev.outbound.res
	}
	out := a.res
	out.Listeners = mergeAgain(before, func(r *generate.Resources) []*listenerv3.Listener { return r.Listeners }, prev, own, shared, (*listenerv3.Listener).GetName)
	out.Routes = mergeAgain(before, func(r *generate.Resources) []*routev3.RouteConfiguration { return r.Routes }, prev, own, shared, (*routev3.RouteConfiguration).GetName)
	out.Clusters = mergeAgain(before, func(r *generate.Resources) []*clusterv3.Cluster { return r.Clusters }, prev, own, shared, (*clusterv3.Cluster).GetName)
	out.Endpoints = mergeAgain(before, func(r *generate.Resources) []*endpointv3.ClusterLoadAssignment { return r.Endpoints }, prev, own, shared, (*endpointv3.ClusterLoadAssignment).GetClusterName)
	a.byType = out.ByType()
	return a
}

// mergeAgain merges one type's lists of own and shared, or returns prev's
// when shared's list is the one prev was merged from (before, nil when
// the own part changed).
func mergeAgain[T any](before *generate.Resources, list func(*generate.Resources) []T, prev *assembly, own, shared *generate.Resources, name func(T) string) []T {
	if before != nil && sameList(list(before), list(shared)) {
		return list(prev.res)
	}
	return mergeByName(list(own), list(shared), name)
}

// mergeByName merges two lists sorted by name; on equal names a's wins.
// When one list is empty the result is the other list itself.
func mergeByName[T any](a, b []T, name func(T) string) []T {
	if len(a) == 0 {
		return b
	}
	if len(b) == 0 {
		return a
	}
	out := make([]T, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		na, nb := name(a[i]), name(b[j])
		switch {
		case na < nb:
			out = append(out, a[i])
			i++
		case nb < na:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i, j = i+1, j+1
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// memo holds the outbound messages published before, so that a message whose
// inputs did not change is handed to the server again rather than a copy.
type memo struct {
	// assignments are load assignments by cluster name, with the key of their service.
	assignments map[string]memoEntry[*endpointv3.ClusterLoadAssignment]
	// groups are the other outbound messages by outbound key and type/name,
	// valid for the structure key in groupKeys.
	groups    map[string]map[string]types.Resource
	groupKeys map[string]string
	// newCLAs counts the load assignments of the last update that were new.
	newCLAs int
}

type memoEntry[T any] struct {
	key string
	msg T
}

func newMemo() *memo {
	return &memo{
		assignments: map[string]memoEntry[*endpointv3.ClusterLoadAssignment]{},
		groups:      map[string]map[string]types.Resource{},
		groupKeys:   map[string]string{},
	}
}

// pushKeys are the keys of one push's inputs that outbound messages depend on.
type pushKeys struct {
	// structure hashes the mesh without proxies and without the endpoints of
	// services with a cluster IP: everything outbound messages other than
	// load assignments depend on (headless services' endpoints are listener
	// addresses, so they stay in).
	structure string
	// services hashes each service by FQDN ("" when the FQDN repeats): all a
	// load assignment depends on.
	services map[string]string
}

func newPushKeys(mesh *ir.Mesh) pushKeys {
	k := pushKeys{services: make(map[string]string, len(mesh.Services))}
	shape := *bareMesh(mesh)
	shape.Services = make([]*ir.Service, 0, len(mesh.Services))
	for _, s := range mesh.Services {
		if s == nil {
			continue
		}
		if _, dup := k.services[s.FQDN]; dup {
			k.services[s.FQDN] = ""
		} else {
			k.services[s.FQDN] = hashJSON(s)
		}
		if !s.Headless {
			c := *s
			c.Endpoints = nil
			s = &c
		}
		shape.Services = append(shape.Services, s)
	}
	k.structure = hashJSON(&shape)
	return k
}

// canonicalize replaces, in an outbound part, every message whose
// inputs are those of a message published before by that message, and
// remembers the new ones.
func (m *memo) canonicalize(part *outboundPart, keys pushKeys) {
	res := part.res
	for i, cla := range res.Endpoints {
		res.Endpoints[i] = m.loadAssignment(cla, keys)
	}
	if m.groupKeys[part.key] != keys.structure {
		m.groupKeys[part.key] = keys.structure
		m.groups[part.key] = map[string]types.Resource{}
	}
	group := m.groups[part.key]
	canonicalList(group, resource.ListenerType, res.Listeners, (*listenerv3.Listener).GetName)
	canonicalList(group, resource.RouteType, res.Routes, (*routev3.RouteConfiguration).GetName)
	canonicalList(group, resource.ClusterType, res.Clusters, (*clusterv3.Cluster).GetName)
}

func (m *memo) loadAssignment(cla *endpointv3.ClusterLoadAssignment, keys pushKeys) *endpointv3.ClusterLoadAssignment {
	name := cla.GetClusterName()
	key := keys.services[clusterFQDN(name)]
	if e, ok := m.assignments[name]; ok && key != "" && e.key == key {
		return e.msg
	}
	m.assignments[name] = memoEntry[*endpointv3.ClusterLoadAssignment]{key: key, msg: cla}
	m.newCLAs++
	return cla
}

// canonicalList replaces each message of list by the one group holds under
// its name, or adds it to group.
func canonicalList[T types.Resource](group map[string]types.Resource, typeURL string, list []T, name func(T) string) {
	for i, msg := range list {
		k := typeURL + "/" + name(msg)
		if prev, ok := group[k].(T); ok {
			list[i] = prev
			continue
		}
		group[k] = msg
	}
}

// pruneGroups drops what belongs to outbound keys without sidecars.
func (m *memo) pruneGroups(outbound map[string]bool) {
	for k := range m.groups {
		if !outbound[k] {
			delete(m.groups, k)
			delete(m.groupKeys, k)
		}
	}
}

// pruneAssignments drops the load assignments of services that are gone or changed.
func (m *memo) pruneAssignments(keys pushKeys) {
	for name, e := range m.assignments {
		if keys.services[clusterFQDN(name)] != e.key {
			delete(m.assignments, name)
		}
	}
}

// clusterFQDN is the service FQDN of an outbound cluster name (ir.ClusterName).
func clusterFQDN(cluster string) string {
	parts := strings.SplitN(cluster, "|", 4)
	if len(parts) != 4 {
		return ""
	}
	return parts[3]
}
