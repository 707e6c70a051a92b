package analyze

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/webhook/inject"
)

// Inputs are the objects the analyzers read: the whole cluster (or the
// objects of some YAML files). Slices need not be sorted.
type Inputs struct {
	Namespaces   []corev1.Namespace
	Pods         []corev1.Pod
	Services     []corev1.Service
	ReplicaSets  []appsv1.ReplicaSet
	Deployments  []appsv1.Deployment
	StatefulSets []appsv1.StatefulSet
	DaemonSets   []appsv1.DaemonSet
	Jobs         []batchv1.Job
	CronJobs     []batchv1.CronJob
	Ingresses    []networkingv1.Ingress

	// Mesh is the default Mesh, nil when there is none.
	Mesh                *meshv1alpha1.Mesh
	MeshRoutes          []meshv1alpha1.MeshRoute
	DestinationPolicies []meshv1alpha1.DestinationPolicy
	PeerAuthentications []meshv1alpha1.PeerAuthentication

	// GatewayAPI are the Gateway API kinds that have objects.
	GatewayAPI []GatewayAPIKind

	// OperatorNamespace is the operator's namespace, whose pods are never
	// injected (inject.DefaultOperatorNamespace when empty).
	OperatorNamespace string
	// Traffic is what the sidecars counted over a recent window (live
	// evidence for CAP010-CAP012); nil offline or when not sampled.
	Traffic *Traffic
	// Version is the sidecar version the injector writes now; when set,
	// pods with a sidecar of another version are reported too. The CLI
	// leaves it empty: the operator does not publish it.
	Version string
}

// GatewayAPIKind is a Gateway API kind that has objects: its CRD's bundle
// version (the gateway.networking.k8s.io/bundle-version annotation) and the
// objects, as "namespace/name".
type GatewayAPIKind struct {
	Kind          string
	CRD           string
	BundleVersion string
	Objects       []string
}

func (in *Inputs) operatorNamespace() string {
	if in.OperatorNamespace == "" {
		return inject.DefaultOperatorNamespace
	}
	return in.OperatorNamespace
}

// Run runs every analyzer on in and returns the findings, sorted.
func Run(in *Inputs) []Finding {
	w := newWorld(in)
	var out []Finding
	for _, a := range analyzers {
		out = append(out, a(w)...)
	}
	Sort(out)
	return out
}

// analyzers are run in this order; each is pure.
var analyzers = []func(*world) []Finding{
	uninjectedPods,
	strictBlocksCallers,
	weightedBypass,
	wholePoolEjection,
	unknownHostsAndSubsets,
	emptySubsets,
	conflictingRoutes,
	gatewayAPIVersions,
	plaintextRefused,
	plaintextCallers,
	meshBypassShare,
}
