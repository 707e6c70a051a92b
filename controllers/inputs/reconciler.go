package inputs

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/xds/translate"
)

// Sink receives every new snapshot of the translation inputs.
// Push must not block; the runner coalesces (latest wins).
type Sink interface {
	Push(in *translate.Inputs)
}

// Reconciler gathers the mesh CRDs, Services, EndpointSlices, Pods and
// Namespaces from the informer caches into one sorted translate.Inputs and
// hands it to the sink. Every watched event maps to the same request, so the
// work queue itself collapses bursts of events into one gather.
type Reconciler struct {
	Client client.Reader
	Sink   Sink
}

// inputsKey is the one request every watched event maps to.
var inputsKey = reconcile.Request{NamespacedName: types.NamespacedName{Name: "mesh-inputs"}}

// +kubebuilder:rbac:groups=mesh.capstan.dev,resources=meshes;meshroutes;destinationpolicies;peerauthentications,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=services;pods;namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch

// Reconcile gathers the inputs and pushes them to the sink.
func (r *Reconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	in, err := Gather(ctx, r.Client)
	if err != nil {
		return reconcile.Result{}, err
	}
	r.Sink.Push(in)
	return reconcile.Result{}, nil
}

// SetupWithManager watches every input kind.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	toKey := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{inputsKey}
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("mesh-inputs").
		Watches(&meshv1alpha1.Mesh{}, toKey).
		Watches(&meshv1alpha1.MeshRoute{}, toKey).
		Watches(&meshv1alpha1.DestinationPolicy{}, toKey).
		Watches(&meshv1alpha1.PeerAuthentication{}, toKey).
		Watches(&corev1.Service{}, toKey).
		Watches(&discoveryv1.EndpointSlice{}, toKey).
		Watches(&corev1.Pod{}, toKey).
		Watches(&corev1.Namespace{}, toKey).
		Complete(r)
}

// Gather lists every input kind from c (a cache reader returns deep copies)
// and sorts each list by namespace and name.
func Gather(ctx context.Context, c client.Reader) (*translate.Inputs, error) {
	in := &translate.Inputs{}
	mesh := &meshv1alpha1.Mesh{}
	switch err := c.Get(ctx, types.NamespacedName{Name: meshv1alpha1.MeshName}, mesh); {
	case err == nil:
		in.Mesh = mesh
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("get mesh: %w", err)
	}
	var err error
	if in.MeshRoutes, err = listSorted[meshv1alpha1.MeshRoute](ctx, c, &meshv1alpha1.MeshRouteList{}); err != nil {
		return nil, err
	}
	if in.DestinationPolicies, err = listSorted[meshv1alpha1.DestinationPolicy](ctx, c, &meshv1alpha1.DestinationPolicyList{}); err != nil {
		return nil, err
	}
	if in.PeerAuthentications, err = listSorted[meshv1alpha1.PeerAuthentication](ctx, c, &meshv1alpha1.PeerAuthenticationList{}); err != nil {
		return nil, err
	}
	if in.Services, err = listSorted[corev1.Service](ctx, c, &corev1.ServiceList{}); err != nil {
		return nil, err
	}
	if in.EndpointSlices, err = listSorted[discoveryv1.EndpointSlice](ctx, c, &discoveryv1.EndpointSliceList{}); err != nil {
		return nil, err
	}
	if in.Pods, err = listSorted[corev1.Pod](ctx, c, &corev1.PodList{}); err != nil {
		return nil, err
	}
	if in.Namespaces, err = listSorted[corev1.Namespace](ctx, c, &corev1.NamespaceList{}); err != nil {
		return nil, err
	}
	return in, nil
}

func listSorted[T any, PT interface {
	*T
	metav1.Object
}](ctx context.Context, c client.Reader, list client.ObjectList) ([]T, error) {
	if err := c.List(ctx, list); err != nil {
		return nil, fmt.Errorf("list %T: %w", list, err)
	}
	items, err := itemsOf[T](list)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(items, func(a, b T) int {
		pa, pb := PT(&a), PT(&b)
		return cmp.Or(cmp.Compare(pa.GetNamespace(), pb.GetNamespace()), cmp.Compare(pa.GetName(), pb.GetName()))
	})
	return items, nil
}

// itemsOf copies the items of a typed list.
func itemsOf[T any](list client.ObjectList) ([]T, error) {
	objs, err := meta.ExtractList(list)
	if err != nil {
		return nil, fmt.Errorf("extract %T: %w", list, err)
	}
	items := make([]T, 0, len(objs))
	for _, o := range objs {
		item, ok := any(o).(*T)
		if !ok {
			return nil, fmt.Errorf("list %T holds %T", list, o)
		}
		items = append(items, *item)
	}
	return items, nil
}
