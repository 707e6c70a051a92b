package commands

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/cli/output"
	"github.com/capstanmesh/capstan/webhook/inject"
)

// InjectResult is what `capstanctl inject` prints: the objects with the
// sidecar added (JSON and YAML print them as a v1 List, ready for
// kubectl apply -f -), or a summary table.
type InjectResult struct {
	Objects []*unstructured.Unstructured
	Summary []InjectedObject
}

// InjectedObject says what inject did to one object.
type InjectedObject struct {
	Kind, Namespace, Name string
	Injected              bool
	Reason                string
}

// MarshalJSON prints the objects as a v1 List.
func (r *InjectResult) MarshalJSON() ([]byte, error) {
	items := make([]map[string]any, 0, len(r.Objects))
	for _, o := range r.Objects {
		items = append(items, o.Object)
	}
	return json.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": items})
}

// WriteTable implements output.Tabular.
func (r *InjectResult) WriteTable(w io.Writer) error {
	t := output.NewTable(w, "KIND", "NAMESPACE", "NAME", "INJECTED", "REASON")
	for _, s := range r.Summary {
		t.Row(s.Kind, s.Namespace, s.Name, fmt.Sprint(s.Injected), s.Reason)
	}
	return t.Flush()
}

func newInjectCommand(o *Options) *cobra.Command {
	var files []string
	var meshFile string
	cmd := &cobra.Command{
		Use:   "inject -f FILE",
		Short: "Add the sidecar to the pods and pod templates of YAML files, offline, as the injection webhook does",
		Long: "inject runs the admission webhook's own Inject on every Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, " +
			"Job and CronJob of the files, with the Mesh of --mesh (or of the files; defaults otherwise), " +
			"and prints them (-o yaml, the default, or json), or what it did (-o table). It does not contact the cluster.",
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if len(files) == 0 {
				return errors.New("inject needs -f FILE")
			}
			res, err := o.inject(files, meshFile)
			if err != nil {
				return err
			}
			return o.print(res, output.YAML)
		},
	}
	cmd.Flags().StringSliceVarP(&files, "filename", "f", nil, "YAML files or directories (- for standard input)")
	cmd.Flags().StringVar(&meshFile, "mesh", "", "a file holding the Mesh whose proxy settings apply (default: the Mesh in the files, else the defaults)")
	return cmd
}

func (o *Options) inject(files []string, meshFile string) (*InjectResult, error) {
	objs, err := readObjects(files, o.In)
	if err != nil {
		return nil, err
	}
	mesh, err := findMesh(objs, meshFile, o.In)
	if err != nil {
		return nil, err
	}
	cfg := inject.ConfigFromMesh(mesh, inject.Options{OperatorNamespace: o.OperatorNamespace, Version: Version})
	res := &InjectResult{}
	ns := o.namespaceOrDefault()
	for _, u := range objs {
		if u.GetNamespace() == "" && !clusterScoped(u.GetKind()) {
			u.SetNamespace(ns)
		}
		out, summary, err := injectObject(u, cfg)
		if err != nil {
			return nil, fmt.Errorf("%s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
		res.Objects = append(res.Objects, out)
		res.Summary = append(res.Summary, summary)
	}
	return res, nil
}

// findMesh reads the Mesh of meshFile, else the first Mesh of objs (nil: none).
func findMesh(objs []*unstructured.Unstructured, meshFile string, stdin io.Reader) (*meshv1alpha1.Mesh, error) {
	if meshFile != "" {
		more, err := readObjects([]string{meshFile}, stdin)
		if err != nil {
			return nil, err
		}
		objs = more
	}
	for _, u := range objs {
		if u.GroupVersionKind().GroupKind() == meshv1alpha1.GroupVersion.WithKind("Mesh").GroupKind() {
			mesh := &meshv1alpha1.Mesh{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, mesh); err != nil {
				return nil, fmt.Errorf("reading the Mesh: %w", err)
			}
			return mesh, nil
		}
	}
	if meshFile != "" {
		return nil, fmt.Errorf("%s holds no Mesh", meshFile)
	}
	return nil, nil
}

// injectObject injects u's pod (or pod template) and returns u's new version.
func injectObject(u *unstructured.Unstructured, cfg inject.Config) (*unstructured.Unstructured, InjectedObject, error) {
	summary := InjectedObject{Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
	typed, view := podTemplateOf(u)
	if typed == nil {
		summary.Reason = "no pod template"
		return u, summary, nil
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, typed); err != nil {
		return nil, summary, fmt.Errorf("reading: %w", err)
	}
	meta, spec := view()
	pod := &corev1.Pod{ObjectMeta: *meta.DeepCopy(), Spec: *spec.DeepCopy()}
	pod.Namespace = u.GetNamespace()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: pod.Namespace,
		Labels: map[string]string{meshv1alpha1.LabelInject: meshv1alpha1.InjectEnabled}}}
	ok, why := inject.ShouldInject(pod, ns, cfg)
	if !ok {
		summary.Reason = why
		return u, summary, nil
	}
	injected, err := inject.Inject(pod, cfg)
	if err != nil {
		return nil, summary, err
	}
	meta.Annotations, meta.Labels, *spec = injected.Annotations, injected.Labels, injected.Spec
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(typed)
	if err != nil {
		return nil, summary, fmt.Errorf("writing: %w", err)
	}
	unstructured.RemoveNestedField(m, "status") // kubectl apply ignores it; the converter would print an empty one
	unstructured.RemoveNestedField(m, "metadata", "creationTimestamp")
	out := &unstructured.Unstructured{Object: m}
	out.SetNamespace(u.GetNamespace())
	summary.Injected, summary.Reason = true, "sidecar added"
	return out, summary, nil
}

// podTemplateOf returns an empty typed object of u's kind and a view of
// its pod template (a Pod's own metadata and spec), or nil for other kinds.
func podTemplateOf(u *unstructured.Unstructured) (any, func() (*metav1.ObjectMeta, *corev1.PodSpec)) {
	switch u.GroupVersionKind().GroupKind().String() {
	case "Pod":
		p := &corev1.Pod{}
		return p, func() (*metav1.ObjectMeta, *corev1.PodSpec) { return &p.ObjectMeta, &p.Spec }
	case "Deployment.apps":
		d := &appsv1.Deployment{}
		return d, templateView(&d.Spec.Template)
	case "StatefulSet.apps":
		s := &appsv1.StatefulSet{}
		return s, templateView(&s.Spec.Template)
	case "DaemonSet.apps":
		d := &appsv1.DaemonSet{}
		return d, templateView(&d.Spec.Template)
	case "ReplicaSet.apps":
		r := &appsv1.ReplicaSet{}
		return r, templateView(&r.Spec.Template)
	case "Job.batch":
		j := &batchv1.Job{}
		return j, templateView(&j.Spec.Template)
	case "CronJob.batch":
		c := &batchv1.CronJob{}
		return c, templateView(&c.Spec.JobTemplate.Spec.Template)
	}
	return nil, nil
}

func templateView(t *corev1.PodTemplateSpec) func() (*metav1.ObjectMeta, *corev1.PodSpec) {
	return func() (*metav1.ObjectMeta, *corev1.PodSpec) { return &t.ObjectMeta, &t.Spec }
}
