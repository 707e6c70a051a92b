package commands

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/cli/analyze"
)

// gatherLive reads the analyzers' inputs from the cluster, every namespace:
// callers of a namespace's Services can be anywhere. A user who may not
// list a kind in every namespace gets namespace scope's objects only (when
// scope is set), and a note saying what was not seen.
func (o *Options) gatherLive(ctx context.Context, scope string) (*analyze.Inputs, []string, error) {
	c, err := o.connect()
	if err != nil {
		return nil, nil, err
	}
	l := &lister{c: c.client, scope: scope}
	in := &analyze.Inputs{}
	if err := l.listCore(ctx, in); err != nil {
		return nil, nil, err
	}
	if err := l.listMesh(ctx, in); err != nil {
		return nil, nil, err
	}
	if in.GatewayAPI, err = l.listGatewayAPI(ctx); err != nil {
		return nil, nil, err
	}
	return in, l.notes, nil
}

// lister lists every namespace, or falls back to scope when forbidden.
type lister struct {
	c     client.Client
	scope string
	notes []string
}

// list lists into l across namespaces; when that is forbidden and a scope
// is set, it lists (or, for Namespaces, gets) the scope only, and notes it.
func (l *lister) list(ctx context.Context, what string, list client.ObjectList) error {
	err := l.c.List(ctx, list)
	if !apierrors.IsForbidden(err) || l.scope == "" {
		if err != nil {
			return fmt.Errorf("listing %s: %w", what, err)
		}
		return nil
	}
	l.notes = append(l.notes, fmt.Sprintf("not allowed to list %s in every namespace: only namespace %s was read; "+
		"callers and exposures in other namespaces are not seen", what, l.scope))
	if nsList, ok := list.(*corev1.NamespaceList); ok {
		ns := corev1.Namespace{}
		if err := l.c.Get(ctx, client.ObjectKey{Name: l.scope}, &ns); err != nil {
			return fmt.Errorf("reading namespace %s: %w", l.scope, err)
		}
		nsList.Items = []corev1.Namespace{ns}
		return nil
	}
	if err := l.c.List(ctx, list, client.InNamespace(l.scope)); err != nil {
		return fmt.Errorf("listing %s in %s: %w", what, l.scope, err)
	}
	return nil
}

func (l *lister) listCore(ctx context.Context, in *analyze.Inputs) error {
	lists := coreLists()
	for _, nl := range lists {
		if err := l.list(ctx, nl.what, nl.list); err != nil {
			return err
		}
	}
	lists.into(in)
	return nil
}

// listMesh reads Capstan's objects; without the CRDs there are none.
func (l *lister) listMesh(ctx context.Context, in *analyze.Inputs) error {
	routes := &meshv1alpha1.MeshRouteList{}
	policies := &meshv1alpha1.DestinationPolicyList{}
	peers := &meshv1alpha1.PeerAuthenticationList{}
	for _, nl := range []namedList{{"MeshRoutes", routes}, {"DestinationPolicies", policies}, {"PeerAuthentications", peers}} {
		if err := l.list(ctx, nl.what, nl.list); err != nil && !meta.IsNoMatchError(err) {
			return err
		}
	}
	in.MeshRoutes, in.DestinationPolicies, in.PeerAuthentications = routes.Items, policies.Items, peers.Items
	mesh := &meshv1alpha1.Mesh{}
	switch err := l.c.Get(ctx, client.ObjectKey{Name: meshv1alpha1.MeshName}, mesh); {
	case err == nil:
		in.Mesh = mesh
	case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
	case apierrors.IsForbidden(err):
		l.notes = append(l.notes, "not allowed to read the Mesh: its mTLS default (STRICT or PERMISSIVE) is not taken into account")
	default:
		return fmt.Errorf("reading the Mesh: %w", err)
	}
	return nil
}

// listGatewayAPI lists the objects (metadata only) of every Gateway API CRD.
func (l *lister) listGatewayAPI(ctx context.Context) ([]analyze.GatewayAPIKind, error) {
	crds := &apiextensionsv1.CustomResourceDefinitionList{}
	if err := l.c.List(ctx, crds); err != nil {
		if apierrors.IsForbidden(err) {
			l.notes = append(l.notes, "not allowed to list CustomResourceDefinitions: Gateway API objects are not checked")
			return nil, nil
		}
		return nil, fmt.Errorf("listing CustomResourceDefinitions: %w", err)
	}
	var out []analyze.GatewayAPIKind
	for i := range crds.Items {
		crd := &crds.Items[i]
		version := storageVersion(crd)
		if crd.Spec.Group != analyze.GatewayAPIGroup || version == "" {
			continue
		}
		objs := &metav1.PartialObjectMetadataList{}
		objs.SetGroupVersionKind(schema.GroupVersionKind{Group: crd.Spec.Group, Version: version, Kind: crd.Spec.Names.ListKind})
		if err := l.list(ctx, crd.Name, objs); err != nil {
			return nil, err
		}
		k := analyze.GatewayAPIKind{Kind: crd.Spec.Names.Kind, CRD: crd.Name, BundleVersion: crd.Annotations[analyze.GatewayAPIBundleVersionAnnotation]}
		for _, obj := range objs.Items {
			k.Objects = append(k.Objects, obj.Namespace+"/"+obj.Name)
		}
		slices.Sort(k.Objects)
		out = append(out, k)
	}
	return out, nil
}

func storageVersion(crd *apiextensionsv1.CustomResourceDefinition) string {
	for _, v := range crd.Spec.Versions {
		if v.Storage {
			return v.Name
		}
	}
	return ""
}
