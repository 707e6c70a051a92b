package runner

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/xds/ir"
	"github.com/capstanmesh/capstan/xds/translate"
)

// ProxyAck is what the xDS server knows of one proxy's answers.
type ProxyAck struct {
	// InSync: the proxy ACKed, for every type, the version published to it.
	InSync bool
	// NackType and NackMessage describe the proxy's latest answer when it
	// was a NACK (Envoy's own error text); empty otherwise.
	NackType    string
	NackMessage string
}

// AckSource reports the ACK state of every known proxy, by node ID.
type AckSource interface {
	ProxyAcks() map[string]ProxyAck
}

// maxNackText bounds the Envoy error text quoted in a condition message.
const maxNackText = 512

// ackTable tracks which objects each proxy's config carries and which
// generation of each the proxy has ACKed, so that statuses can count, per
// object, the proxies that are programmed with its current generation.
type ackTable struct {
	mu sync.Mutex
	// carried maps node ID to the objects its current config carries.
	carried map[string][]ir.ObjectRef
	// names maps node ID to the proxy's pod, "namespace/name".
	names map[string]string
	// gens are the objects' generations in the current translation.
	gens map[ir.ObjectRef]int64
	// acked maps node ID to the generations its last ACKed config carried.
	acked map[string]map[ir.ObjectRef]int64
}

func newAckTable() *ackTable {
	return &ackTable{carried: map[string][]ir.ObjectRef{}, names: map[string]string{},
		gens: map[ir.ObjectRef]int64{}, acked: map[string]map[ir.ObjectRef]int64{}}
}

// setCarried records, after a push, what each proxy's config carries.
func (t *ackTable) setCarried(res *translate.Result) {
	carried, names := carriedObjects(res)
	gens := make(map[ir.ObjectRef]int64, len(res.Statuses))
	for _, s := range res.Statuses {
		gens[s.Ref] = s.Generation
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.carried, t.names, t.gens = carried, names, gens
	for id := range t.acked {
		if _, ok := carried[id]; !ok {
			delete(t.acked, id)
		}
	}
}

// carriedObjects returns, per proxy, the MeshRoutes, DestinationPolicies and
// PeerAuthentications its config is generated from: those of the services
// in its scope, and the PeerAuthentications governing its pod.
func carriedObjects(res *translate.Result) (map[string][]ir.ObjectRef, map[string]string) {
	carried := make(map[string][]ir.ObjectRef, len(res.Mesh.Proxies))
	names := make(map[string]string, len(res.Mesh.Proxies))
	byScope := map[string][]ir.ObjectRef{}
	for _, p := range res.Mesh.Proxies {
		if p.Kind != ir.ProxySidecar && p.Kind != ir.ProxyGRPC {
			continue
		}
		key := outboundKey(p)
		refs, ok := byScope[key]
		if !ok {
			refs = serviceObjects(res.Mesh, p.Scope)
			byScope[key] = refs
		}
		if pas := res.PeerAuthenticationsOf(p); len(pas) > 0 {
			refs = append(slices.Clip(refs), pas...)
		}
		carried[p.ID], names[p.ID] = refs, p.Namespace+"/"+p.Name
	}
	return carried, names
}

// serviceObjects lists, once each, the objects behind the services in scope.
func serviceObjects(mesh *ir.Mesh, scope *ir.Scope) []ir.ObjectRef {
	seen := map[ir.ObjectRef]bool{}
	var out []ir.ObjectRef
	add := func(ref *ir.ObjectRef) {
		if ref != nil && ref.Name != "" && !seen[*ref] {
			seen[*ref] = true
			out = append(out, *ref)
		}
	}
	for _, svc := range mesh.Services {
		if !scope.Includes(svc) {
			continue
		}
		add(svc.RouteSource)
		add(svc.PolicySource)
		for _, r := range svc.Routes {
			add(&r.Source)
		}
	}
	return out
}

// objectCount is the proxies' verdict on one object.
type objectCount struct {
	programmed, total int32
	// rejectedBy names a proxy that NACKed a config carrying the object's
	// current generation, and Envoy's text; rejected counts such proxies.
	rejectedBy, rejectText string
	rejected               int32
}

// count refreshes each proxy's ACKed generations from acks and counts, per
// object, the proxies carrying it, programmed with it and rejecting it.
func (t *ackTable) count(acks map[string]ProxyAck) map[ir.ObjectRef]*objectCount {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[ir.ObjectRef]*objectCount{}
	for _, id := range slices.Sorted(maps.Keys(t.carried)) {
		refs, ack := t.carried[id], acks[id]
		if ack.InSync {
			t.acked[id] = t.gensOf(refs)
		}
		for _, ref := range refs {
			c := out[ref]
			if c == nil {
				c = &objectCount{}
				out[ref] = c
			}
			t.countOne(c, id, ref, ack)
		}
	}
	return out
}

func (t *ackTable) countOne(c *objectCount, id string, ref ir.ObjectRef, ack ProxyAck) {
	c.total++
	gen, ok := t.acked[id][ref]
	if ok && gen == t.gens[ref] {
		c.programmed++
		return
	}
	if ack.NackType == "" {
		return
	}
	// Not ACKed at this generation and the proxy's latest answer is a NACK:
	// the object is new or changed since the proxy's last good config.
	c.rejected++
	if c.rejectedBy == "" {
		c.rejectedBy, c.rejectText = t.names[id], ack.NackMessage
	}
}

func (t *ackTable) gensOf(refs []ir.ObjectRef) map[ir.ObjectRef]int64 {
	out := make(map[ir.ObjectRef]int64, len(refs))
	for _, ref := range refs {
		out[ref] = t.gens[ref]
	}
	return out
}

// withProxyCounts sets each status's proxy counts and, when a proxy rejected
// the object's current generation, turns a True Programmed condition into
// False with reason Rejected, the proxy's name and Envoy's words.
func withProxyCounts(in []translate.ObjectStatus, counts map[ir.ObjectRef]*objectCount) []translate.ObjectStatus {
	out := make([]translate.ObjectStatus, len(in))
	for i, s := range in {
		c := counts[s.Ref]
		if c == nil {
			c = &objectCount{}
		}
		s.Proxies = meshv1alpha1.NewProxyCounts(c.programmed, c.total)
		if c.rejected > 0 {
			s.Conditions = slices.Clone(s.Conditions)
			if prog := meta.FindStatusCondition(s.Conditions, meshv1alpha1.ConditionProgrammed); prog != nil && prog.Status == metav1.ConditionTrue {
				meta.SetStatusCondition(&s.Conditions, rejected(s, c))
			}
		}
		out[i] = s
	}
	return out
}

func rejected(s translate.ObjectStatus, c *objectCount) metav1.Condition {
	var b strings.Builder
	b.WriteString("proxy ")
	b.WriteString(c.rejectedBy)
	b.WriteString(" rejected the config: ")
	b.WriteString(truncate(c.rejectText, maxNackText))
	if c.rejected > 1 {
		b.WriteString(" (and ")
		b.WriteString(strconv.Itoa(int(c.rejected - 1)))
		b.WriteString(" more proxies)")
	}
	return metav1.Condition{Type: meshv1alpha1.ConditionProgrammed, Status: metav1.ConditionFalse,
		Reason: meshv1alpha1.ReasonRejected, Message: b.String(), ObservedGeneration: s.Generation}
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
