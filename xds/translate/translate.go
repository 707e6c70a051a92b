package translate

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/capstanmesh/capstan/api/annotations"
	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/xds/ir"
)

// Result is what Translate produces: the mesh model and one status per
// MeshRoute, DestinationPolicy and PeerAuthentication.
type Result struct {
	// Mesh is the model handed to xds/generate. Treat it as read-only: values
	// (routes of a MeshRoute with several hosts, for instance) may be shared.
	Mesh *ir.Mesh `json:"mesh"`
	// Statuses are sorted by kind, namespace and name.
	Statuses []ObjectStatus `json:"statuses,omitempty"`
	// Notices are what was left out because of objects without a status of
	// their own, sorted by kind, namespace and name.
	Notices []Notice `json:"notices,omitempty"`
	// Changes is what changed since the mesh TranslateSince was given
	// (Full after Translate): which services' endpoints and routes, which
	// services came and went. Incremental generation works from it.
	Changes ir.Changes `json:"-"`
	// peerAuth answers which PeerAuthentications govern a proxy.
	peerAuth *peerAuthIndex
}

// ObjectStatus is the translation verdict on one API object.
//
// Conditions hold Accepted and, for MeshRoute and DestinationPolicy,
// ResolvedRefs, each with ObservedGeneration set and LastTransitionTime left
// zero (the status writer fills it in). Programmed is deliberately absent: it
// is owned by the runner, which sets it once generation has run and proxies
// have acknowledged (or rejected) the config.
type ObjectStatus struct {
	Ref        ir.ObjectRef       `json:"ref"`
	Generation int64              `json:"generation"`
	Conditions []metav1.Condition `json:"conditions"`
	// Proxies is set by the runner (how many proxies carry the object and
	// ACKed its generation); translation leaves it nil.
	Proxies *meshv1alpha1.ProxyCounts `json:"proxies,omitempty"`
}

// Status returns the status of the object ref names, or nil.
func (r *Result) Status(ref ir.ObjectRef) *ObjectStatus {
	i, ok := slices.BinarySearchFunc(r.Statuses, ref, func(s ObjectStatus, ref ir.ObjectRef) int {
		return compareRefs(s.Ref, ref)
	})
	if !ok {
		return nil
	}
	return &r.Statuses[i]
}

// Translate turns the inputs into the mesh model and a status per mesh object.
// It is pure and deterministic and never mutates in. User mistakes become
// conditions; an error means the inputs are missing or translation produced a
// model that breaks ir's invariants (a bug).
func Translate(in *Inputs) (*Result, error) {
	if in == nil {
		return nil, errors.New("translate: nil inputs")
	}
	t := newTranslator(in)
	t.translateServices()
	t.translateEndpoints()
	t.translatePolicies()
	t.applyClusterBound()
	t.translateRoutes()
	t.translatePeerAuthentications()
	t.nsDeps, t.routeHostsByNS = t.namespaceDependencies(), t.routeHosts()
	t.translateProxies()
	mesh := t.model()
	if err := mesh.Validate(); err != nil {
		return nil, fmt.Errorf("translate: produced an invalid mesh model: %w", err)
	}
	sortNotices(t.notices)
	return &Result{Mesh: mesh, Statuses: t.statuses.list(), Notices: t.notices, Changes: ir.Changes{Full: true}, peerAuth: t.peerAuth}, nil
}

// TranslateSince is Translate, with Result.Changes saying what changed since
// prev, the mesh of an earlier result (nil: everything, Changes.Full). It is
// as pure as Translate and reads prev only.
func TranslateSince(prev *ir.Mesh, in *Inputs) (*Result, error) {
	res, err := Translate(in)
	if err != nil {
		return nil, err
	}
	res.Changes = ir.Diff(prev, res.Mesh)
	return res, nil
}

// serviceEntry pairs a Service with its model.
type serviceEntry struct {
	k8s *corev1.Service
	ir  *ir.Service
}

// translator holds the state of one Translate call. It reads in and writes
// only to the model it builds.
type translator struct {
	in          *Inputs
	trustDomain string
	// trustDomainAliases are Mesh.spec.trustDomainAliases, sorted.
	trustDomainAliases []string
	meshMode           ir.MTLSMode
	streamIdleTimeout  *ir.Duration
	telemetry          ir.Telemetry
	// services are sorted by FQDN; byFQDN indexes them.
	services []*serviceEntry
	byFQDN   map[string]*serviceEntry
	// servicesByNS are the services kept in the mesh (after the cluster
	// bound), by namespace, in services' order: the candidates for a pod's
	// inbound ports, as a Service selects pods of its own namespace only.
	servicesByNS map[string][]*serviceEntry
	pods         map[string]*corev1.Pod // by "namespace/name"
	peerAuth     *peerAuthIndex
	proxies      []*ir.Proxy
	statuses     *statusSet
	// scoped is Mesh spec.scoping.mode Scoped (the default); maxClusters its bound.
	scoped      bool
	maxClusters int
	// nsDeps are the namespaces' capstan.dev/dependencies; routeHostsByNS
	// the FQDNs their MeshRoutes name.
	nsDeps         map[string]annotations.Dependencies
	routeHostsByNS map[string][]string
	notices        []Notice
}

func newTranslator(in *Inputs) *translator {
	t := &translator{
		in:          in,
		trustDomain: DefaultTrustDomain,
		meshMode:    ir.MTLSPermissive,
		byFQDN:      map[string]*serviceEntry{},
		pods:        map[string]*corev1.Pod{},
		statuses:    newStatusSet(),
		scoped:      true,
		maxClusters: meshv1alpha1.DefaultMaxClustersPerNamespace,
	}
	if in.Mesh != nil {
		t.applyMeshSpec(&in.Mesh.Spec)
	}
	for i := range in.Pods {
		p := &in.Pods[i]
		t.pods[p.Namespace+"/"+p.Name] = p
	}
	return t
}

// DefaultTrustDomain is the trust domain when the Mesh does not name one.
const DefaultTrustDomain = "cluster.local"

func (t *translator) applyMeshSpec(spec *meshv1alpha1.MeshSpec) {
	if spec.TrustDomain != "" {
		t.trustDomain = spec.TrustDomain
	}
	for _, a := range spec.TrustDomainAliases {
		if a != "" && a != t.trustDomain && !slices.Contains(t.trustDomainAliases, a) {
			t.trustDomainAliases = append(t.trustDomainAliases, a)
		}
	}
	slices.Sort(t.trustDomainAliases)
	if spec.MTLS.Mode == meshv1alpha1.MTLSStrict {
		t.meshMode = ir.MTLSStrict
	}
	t.streamIdleTimeout = irDuration(spec.Traffic.StreamIdleTimeout)
	t.telemetry = telemetry(&spec.Telemetry)
	t.scoped = spec.Scoping.Mode != meshv1alpha1.ScopingMeshWide
	t.maxClusters = maxClustersPerNamespace(spec)
}

// model assembles the mesh, sorted.
func (t *translator) model() *ir.Mesh {
	m := &ir.Mesh{
		TrustDomain: t.trustDomain, TrustDomainAliases: t.trustDomainAliases, MTLSMode: t.meshMode,
		StreamIdleTimeout: t.streamIdleTimeout, Telemetry: t.telemetry,
	}
	for _, e := range t.services {
		m.Services = append(m.Services, e.ir)
	}
	m.Proxies = t.proxies
	slices.SortFunc(m.Proxies, func(a, b *ir.Proxy) int { return cmp.Compare(a.ID, b.ID) })
	return m
}
