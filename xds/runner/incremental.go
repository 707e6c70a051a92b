package runner

import (
	"slices"

	"google.golang.org/protobuf/proto"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/capstanmesh/capstan/xds/generate"
	"github.com/capstanmesh/capstan/xds/ir"
)

// Incremental generation (docs/generate.md, "Incremental generation").
// Translation says what changed since the mesh the table published last
// (ir.Changes). An outbound part published then is patched rather than
// generated again when that is exactly equivalent:
//
//   - endpoints of a service changed: its load assignments are generated
//     (generate.Partial) and replace the old ones;
//   - routes of a service changed (same destinations, no retry budget):
//     the route configurations of its ports are generated and replace the
//     old ones;
//   - a service came or went: its clusters and load assignments are added
//     or dropped, every route configuration and listener is generated
//     again, and the messages equal to the old ones are the old ones.
//
// Anything else (a mesh-wide setting, a service whose ports, policy or
// subsets changed) generates the part whole, and so does a part whose last
// generation reported per-object errors, or whose patch would report some:
// errors are per-object statuses, and only a whole generation lists them
// all. A patched part keeps every unchanged list as the same slice, and a
// sidecar whose own inputs and outbound part did not change is not handed
// to the server at all. TestIncrementalEqualsFull checks patched parts
// against whole generations.

// outboundJob is the outbound part of one outbound key to bring up to date.
type outboundJob struct {
	key  string
	rep  *ir.Proxy
	prev *outboundPart
	// delta is the patch's generated part (nil: the part is generated
	// whole, or prev is kept when nothing changed).
	delta *generate.Resources
	sel   generate.Selection
	part  *outboundPart
	full  bool
}

// run generates the job's part whole or its patch; patches are applied
// afterwards, in key order (patch).
func (j *outboundJob) run(mesh *ir.Mesh, changes *ir.Changes) {
	if !j.incremental(changes) {
		j.full, j.part = true, generateOutbound(mesh, j.rep)
		return
	}
	if changes.Empty() {
		j.part = j.prev
		return
	}
	j.sel = selection(mesh, changes)
	p := *j.rep
	p.Inbound, p.AppProbes = nil, nil
	delta, err := generate.Partial(mesh, &p, j.sel)
	if err != nil { // per-object errors or worse: generate whole
		j.full, j.part = true, generateOutbound(mesh, j.rep)
		return
	}
	j.delta = delta
}

// incremental reports whether the previous part can be patched.
func (j *outboundJob) incremental(changes *ir.Changes) bool {
	prev := j.prev
	return prev != nil && prev.err == nil && len(prev.errs) == 0 && !changes.Full && len(changes.Changed) == 0
}

// selection is what Partial generates for the changes.
func selection(mesh *ir.Mesh, c *ir.Changes) generate.Selection {
	sel := generate.Selection{Endpoints: setOf(c.Endpoints)}
	if len(c.Routes) > 0 {
		sel.RoutePorts = map[uint32]bool{}
		for _, fqdn := range c.Routes {
			for _, p := range mesh.ServiceByFQDN(fqdn).Ports {
				if p != nil {
					sel.RoutePorts[p.Port] = true
				}
			}
		}
	}
	if len(c.Added)+len(c.Removed) > 0 {
		sel.Services = setOf(slices.Concat(c.Added, c.Removed))
		sel.AllRoutes, sel.Listeners = true, true
	}
	return sel
}

func setOf(list []string) map[string]bool {
	if len(list) == 0 {
		return nil
	}
	out := make(map[string]bool, len(list))
	for _, s := range list {
		out[s] = true
	}
	return out
}

// patch applies the job's generated part to the previous one; load
// assignments equal to one another part's patch made this push are that
// message (shared, by cluster name). It returns how many load assignments
// are new messages.
func (j *outboundJob) patch(shared map[string]*endpointv3.ClusterLoadAssignment) int {
	newCLAs := 0
	for i, cla := range j.delta.Endpoints {
		name := cla.GetClusterName()
		if prev, ok := shared[name]; ok && proto.Equal(prev, cla) {
			j.delta.Endpoints[i] = prev
			continue
		}
		shared[name] = cla
		newCLAs++
	}
	j.part = patchPart(j.prev, j.delta, &j.sel)
	return newCLAs
}

// patchPart replaces in prev what the selection generated again by delta.
// Lists that did not change are prev's slices; when none did, prev itself.
func patchPart(prev *outboundPart, delta *generate.Resources, sel *generate.Selection) *outboundPart {
	old := prev.res
	routeNames := map[string]bool{}
	for port := range sel.RoutePorts {
		routeNames[generate.RouteConfigName(port)] = true
	}
	res := &generate.Resources{
		Clusters: patchList(old.Clusters, delta.Clusters, (*clusterv3.Cluster).GetName,
			func(name string) bool { return sel.Services[clusterFQDN(name)] }),
		Endpoints: patchList(old.Endpoints, delta.Endpoints, (*endpointv3.ClusterLoadAssignment).GetClusterName,
			func(name string) bool { fqdn := clusterFQDN(name); return sel.Services[fqdn] || sel.Endpoints[fqdn] }),
		Routes: patchList(old.Routes, delta.Routes, (*routev3.RouteConfiguration).GetName,
			func(name string) bool { return sel.AllRoutes || routeNames[name] }),
		Listeners: old.Listeners,
		Secrets:   old.Secrets,
	}
	if sel.Listeners {
		res.Listeners = patchList(old.Listeners, delta.Listeners, (*listenerv3.Listener).GetName,
			func(string) bool { return true })
	}
	if sameList(res.Clusters, old.Clusters) && sameList(res.Endpoints, old.Endpoints) &&
		sameList(res.Routes, old.Routes) && sameList(res.Listeners, old.Listeners) {
		return prev
	}
	return &outboundPart{key: prev.key, rep: prev.rep, res: res}
}

// patchList is old without the messages whose names replaced says were
// generated again, plus fresh (those generated), sorted by name; a fresh
// message equal to the old one of its name is the old one, and when the
// result holds the same messages as old it is old itself.
func patchList[T proto.Message](old, fresh []T, name func(T) string, replaced func(string) bool) []T {
	byName := map[string]T{}
	kept := make([]T, 0, len(old))
	for _, m := range old {
		if replaced(name(m)) {
			byName[name(m)] = m
		} else {
			kept = append(kept, m)
		}
	}
	if len(byName) == 0 && len(fresh) == 0 {
		return old
	}
	reused := make([]T, len(fresh))
	for i, m := range fresh {
		reused[i] = m
		if prev, ok := byName[name(m)]; ok && proto.Equal(prev, m) {
			reused[i] = prev
		}
	}
	out := mergeByName(reused, kept, name)
	if sameMessages(out, old) {
		return old
	}
	return out
}

// sameMessages reports whether two lists hold the same messages (pointers) in order.
func sameMessages[T proto.Message](a, b []T) bool {
	return slices.EqualFunc(a, b, func(x, y T) bool { return any(x) == any(y) })
}

// sameList reports whether two lists are the same slice (or both empty).
func sameList[T any](a, b []T) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
