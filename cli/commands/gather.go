package commands

import (
	"context"
	"fmt"
	"slices"

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
// callers of a namespace's Services can be anywhere.
func (o *Options) gatherLive(ctx context.Context) (*analyze.Inputs, error) {
	c, err := o.connect()
	if err != nil {
		return nil, err
	}
	in := &analyze.Inputs{}
	if err := listCore(ctx, c.client, in); err != nil {
		return nil, err
	}
	if err := listMesh(ctx, c.client, in); err != nil {
		return nil, err
	}
	if in.GatewayAPI, err = listGatewayAPI(ctx, c.client); err != nil {
		return nil, err
	}
	return in, nil
}

// list lists into l, naming what failed.
func list(ctx context.Context, c client.Client, what string, l client.ObjectList) error {
	if err := c.List(ctx, l); err != nil {
		return fmt.Errorf("listing %s: %w", what, err)
	}
	return nil
}

func listCore(ctx context.Context, c client.Client, in *analyze.Inputs) error {
	lists := coreLists()
	for _, l := range lists {
		if err := list(ctx, c, l.what, l.list); err != nil {
			return err
		}
	}
	lists.into(in)
	return nil
}

// listMesh reads Capstan's objects; without the CRDs there are none.
func listMesh(ctx context.Context, c client.Client, in *analyze.Inputs) error {
	routes := &meshv1alpha1.MeshRouteList{}
	policies := &meshv1alpha1.DestinationPolicyList{}
	peers := &meshv1alpha1.PeerAuthenticationList{}
	for what, l := range map[string]client.ObjectList{"MeshRoutes": routes, "DestinationPolicies": policies, "PeerAuthentications": peers} {
		if err := list(ctx, c, what, l); err != nil && !meta.IsNoMatchError(err) {
			return err
		}
	}
	in.MeshRoutes, in.DestinationPolicies, in.PeerAuthentications = routes.Items, policies.Items, peers.Items
	mesh := &meshv1alpha1.Mesh{}
	switch err := c.Get(ctx, client.ObjectKey{Name: meshv1alpha1.MeshName}, mesh); {
	case err == nil:
		in.Mesh = mesh
	case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
	default:
		return fmt.Errorf("reading the Mesh: %w", err)
	}
	return nil
}

// listGatewayAPI lists the objects (metadata only) of every Gateway API CRD.
func listGatewayAPI(ctx context.Context, c client.Client) ([]analyze.GatewayAPIKind, error) {
	crds := &apiextensionsv1.CustomResourceDefinitionList{}
	if err := list(ctx, c, "CustomResourceDefinitions", crds); err != nil {
		return nil, err
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
		if err := list(ctx, c, crd.Name, objs); err != nil {
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
