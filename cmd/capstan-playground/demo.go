package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/internal/netpod"
)

// The demo: frontend calls reviews (v1 and v2) over plain HTTP through the
// sidecars; legacy, without a sidecar, calls a reviews pod directly (no
// kube-proxy here, so a ClusterIP means nothing without a sidecar). The
// MeshRoute reviews starts with all traffic on v1.
const (
	demoNamespace = "demo"
	demoPort      = 9080
	// callInterval is each client's pause between calls: about 20 calls
	// per second from frontend, 5 from legacy.
	callInterval       = 50 * time.Millisecond
	legacyCallInterval = 200 * time.Millisecond
)

// installMesh creates the Mesh (PERMISSIVE
// mTLS, built-in CA) and the demo namespace with injection on.
func (pg *playground) installMesh(ctx context.Context) error {
	objs := []client.Object{
		// The defaults: PERMISSIVE mTLS, the built-in CA.
		&meshv1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: meshv1alpha1.MeshName}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: demoNamespace,
			Labels: map[string]string{meshv1alpha1.LabelInject: meshv1alpha1.InjectEnabled}}},
		reviewsPolicy(),
		reviewsRoute(),
	}
	for _, o := range objs {
		if err := markApplied(o, pg.env.Scheme); err != nil {
			return err
		}
		if err := pg.env.Client.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}

// markApplied records obj as `kubectl apply` would have
// (kubectl.kubernetes.io/last-applied-configuration), so that applying a
// sample over it merges as expected, without kubectl's warning.
func markApplied(obj client.Object, scheme *runtime.Scheme) error {
	if _, ok := obj.(*corev1.Namespace); ok {
		return nil
	}
	gvk, err := apiutil.GVKForObject(obj, scheme)
	if err != nil {
		return fmt.Errorf("the kind of %T: %w", obj, err)
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	raw, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", obj.GetName(), err)
	}
	obj.SetAnnotations(map[string]string{corev1.LastAppliedConfigAnnotation: string(raw)})
	return nil
}

// reviewsPolicy names reviews' subsets v1 and v2 by the pods' version label.
func reviewsPolicy() *meshv1alpha1.DestinationPolicy {
	return &meshv1alpha1.DestinationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "reviews", Namespace: demoNamespace},
		Spec: meshv1alpha1.DestinationPolicySpec{Host: "reviews", Subsets: []meshv1alpha1.Subset{
			{Name: "v1", Labels: map[string]string{"version": "v1"}},
			{Name: "v2", Labels: map[string]string{"version": "v2"}},
		}},
	}
}

// reviewsRoute sends every request for reviews to v1.
func reviewsRoute() *meshv1alpha1.MeshRoute {
	return &meshv1alpha1.MeshRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "reviews", Namespace: demoNamespace},
		Spec: meshv1alpha1.MeshRouteSpec{Hosts: []string{"reviews"}, HTTP: []meshv1alpha1.HTTPRule{{
			Name:  "split",
			Route: []meshv1alpha1.Destination{{Host: "reviews", Subset: "v1", Weight: ptr.To[int32](100)}},
		}}},
	}
}

// startDemo starts reviews v1 and v2, their Service, then the callers.
func (pg *playground) startDemo(ctx context.Context) error {
	server := netpod.AppConfig{Mode: netpod.HTTPServer, Port: demoPort}
	for _, v := range []string{"v1", "v2"} {
		spec := podSpec{name: "reviews-" + v, namespace: demoNamespace, app: "reviews",
			labels: map[string]string{"version": v}, cfg: server}
		if err := pg.startPod(ctx, spec); err != nil {
			return err
		}
	}
	if err := pg.kubelet.service(ctx, demoNamespace, "reviews", map[string]string{"app": "reviews"},
		pg.pods["reviews-v1"], pg.pods["reviews-v2"]); err != nil {
		return err
	}
	url := fmt.Sprintf("http://reviews.%s:%d/", demoNamespace, demoPort)
	legacyURL := fmt.Sprintf("http://%s:%d/", pg.pods["reviews-v1"].obj.Status.PodIP, demoPort)
	callers := []podSpec{
		{name: "frontend", namespace: demoNamespace, app: "frontend",
			cfg: netpod.AppConfig{Mode: netpod.HTTPClient, URL: url, Interval: callInterval, Timeout: 2 * time.Second}},
		{name: "legacy", namespace: demoNamespace, app: "legacy", noInject: true,
			cfg: netpod.AppConfig{Mode: netpod.HTTPClient, URL: legacyURL, Interval: legacyCallInterval,
				Timeout: 2 * time.Second, NewConnections: true}},
	}
	for _, spec := range callers {
		if err := pg.startPod(ctx, spec); err != nil {
			return err
		}
	}
	return nil
}

func (pg *playground) startPod(ctx context.Context, spec podSpec) error {
	p, err := pg.kubelet.startPod(ctx, spec)
	if p != nil {
		pg.pods[spec.name] = p
	}
	return err
}
