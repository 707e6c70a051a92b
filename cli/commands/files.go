package commands

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/cli/analyze"
)

// readObjects reads every object of the YAML or JSON files (directories:
// their *.yaml, *.yml and *.json files; "-": in), Lists unpacked, in order.
func readObjects(paths []string, in io.Reader) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, p := range paths {
		files, err := expand(p)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			objs, err := readFile(f, in)
			if err != nil {
				return nil, err
			}
			out = append(out, objs...)
		}
	}
	return out, nil
}

func expand(p string) ([]string, error) {
	if p == "-" {
		return []string{p}, nil
	}
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	if !st.IsDir() {
		return []string{p}, nil
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	var out []string
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); !e.IsDir() && slices.Contains([]string{".yaml", ".yml", ".json"}, ext) {
			out = append(out, filepath.Join(p, e.Name()))
		}
	}
	return out, nil
}

func readFile(name string, stdin io.Reader) ([]*unstructured.Unstructured, error) {
	r := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		defer func() { _ = f.Close() }()
		r = f
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bufio.NewReader(r), 4096)
	var out []*unstructured.Unstructured
	for {
		obj := &unstructured.Unstructured{}
		err := dec.Decode(&obj.Object)
		switch {
		case errors.Is(err, io.EOF):
			return out, nil
		case err != nil:
			return nil, fmt.Errorf("decoding %s: %w", name, err)
		case len(obj.Object) == 0:
			continue
		}
		if obj.IsList() {
			if err := obj.EachListItem(func(item runtime.Object) error {
				out = append(out, item.(*unstructured.Unstructured))
				return nil
			}); err != nil {
				return nil, fmt.Errorf("decoding %s: %w", name, err)
			}
			continue
		}
		out = append(out, obj)
	}
}

// readFiles reads the analyzers' inputs from files; objects without a
// namespace (other than cluster-scoped kinds) go to defaultNS.
func readFiles(paths []string, defaultNS string, stdin io.Reader) (*analyze.Inputs, error) {
	objs, err := readObjects(paths, stdin)
	if err != nil {
		return nil, err
	}
	in := &analyze.Inputs{}
	gw := gatewayFiles{crds: map[string]string{}, objects: map[string][]string{}}
	for _, u := range objs {
		if u.GetNamespace() == "" && !clusterScoped(u.GetKind()) {
			u.SetNamespace(defaultNS)
		}
		if err := addObject(in, u, &gw); err != nil {
			return nil, err
		}
	}
	in.GatewayAPI = gw.kinds()
	return in, nil
}

func clusterScoped(kind string) bool {
	return slices.Contains([]string{"Namespace", "Mesh", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding",
		"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "Node", "PersistentVolume", "StorageClass"}, kind)
}

// addObject converts u to its type and appends it to in; kinds the
// analyzers do not read are skipped.
func addObject(in *analyze.Inputs, u *unstructured.Unstructured, gw *gatewayFiles) error {
	gvk := u.GroupVersionKind()
	if gvk.Group == analyze.GatewayAPIGroup {
		gw.objects[gvk.Kind] = append(gw.objects[gvk.Kind], u.GetNamespace()+"/"+u.GetName())
		return nil
	}
	target, appendTo := typedTarget(in, gvk.GroupKind().String(), gw)
	if target == nil {
		return nil
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, target); err != nil {
		return fmt.Errorf("reading %s %s/%s: %w", gvk.Kind, u.GetNamespace(), u.GetName(), err)
	}
	appendTo()
	return nil
}

// typedTarget returns an empty object of the group-kind and the function
// appending it to in, or nil for a kind the analyzers do not read.
func typedTarget(in *analyze.Inputs, groupKind string, gw *gatewayFiles) (any, func()) {
	switch groupKind {
	case "Namespace":
		return appendNew(&in.Namespaces)
	case "Pod":
		return appendNew(&in.Pods)
	case "Service":
		return appendNew(&in.Services)
	case "Deployment.apps":
		return appendNew(&in.Deployments)
	case "StatefulSet.apps":
		return appendNew(&in.StatefulSets)
	case "DaemonSet.apps":
		return appendNew(&in.DaemonSets)
	case "ReplicaSet.apps":
		return appendNew(&in.ReplicaSets)
	case "Job.batch":
		return appendNew(&in.Jobs)
	case "CronJob.batch":
		return appendNew(&in.CronJobs)
	case "Ingress.networking.k8s.io":
		return appendNew(&in.Ingresses)
	case "MeshRoute." + meshv1alpha1.GroupVersion.Group:
		return appendNew(&in.MeshRoutes)
	case "DestinationPolicy." + meshv1alpha1.GroupVersion.Group:
		return appendNew(&in.DestinationPolicies)
	case "PeerAuthentication." + meshv1alpha1.GroupVersion.Group:
		return appendNew(&in.PeerAuthentications)
	case "Mesh." + meshv1alpha1.GroupVersion.Group:
		mesh := &meshv1alpha1.Mesh{}
		return mesh, func() { in.Mesh = mesh }
	case "CustomResourceDefinition.apiextensions.k8s.io":
		crd := &apiextensionsv1.CustomResourceDefinition{}
		return crd, func() { gw.addCRD(crd) }
	}
	return nil, nil
}

// appendNew returns a new element and the function appending it to list.
func appendNew[T any](list *[]T) (*T, func()) {
	v := new(T)
	return v, func() { *list = append(*list, *v) }
}

// gatewayFiles collects the Gateway API CRDs and objects of the files.
type gatewayFiles struct {
	// crds maps a kind to its CRD's name and bundle version.
	crds    map[string]string
	names   map[string]string
	objects map[string][]string
}

func (g *gatewayFiles) addCRD(crd *apiextensionsv1.CustomResourceDefinition) {
	if crd.Spec.Group != analyze.GatewayAPIGroup {
		return
	}
	if g.names == nil {
		g.names = map[string]string{}
	}
	g.crds[crd.Spec.Names.Kind] = crd.Annotations[analyze.GatewayAPIBundleVersionAnnotation]
	g.names[crd.Spec.Names.Kind] = crd.Name
}

func (g *gatewayFiles) kinds() []analyze.GatewayAPIKind {
	var out []analyze.GatewayAPIKind
	for _, kind := range slices.Sorted(maps.Keys(g.objects)) {
		name := g.names[kind]
		if name == "" {
			name = strings.ToLower(kind) + "s." + analyze.GatewayAPIGroup
		}
		out = append(out, analyze.GatewayAPIKind{Kind: kind, CRD: name, BundleVersion: g.crds[kind], Objects: g.objects[kind]})
	}
	return out
}
