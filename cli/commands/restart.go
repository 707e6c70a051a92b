package commands

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/capstanmesh/capstan/cli/analyze"
	"github.com/capstanmesh/capstan/cli/output"
	"github.com/capstanmesh/capstan/controllers/uninjected"
)

// RestartResult is what `capstanctl restart-uninjected` prints.
type RestartResult struct {
	Namespace string              `json:"namespace"`
	DryRun    bool                `json:"dryRun,omitempty"`
	Workloads []RestartedWorkload `json:"workloads"`
}

// RestartedWorkload is one workload whose pods lack the sidecar, or one
// such pod without a workload (Kind Pod: it is not restarted).
type RestartedWorkload struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Pods counts the pods without the sidecar.
	Pods int `json:"pods"`
	// Result is "restarted", "would restart" (dry run), or why not.
	Result string `json:"result"`
	Failed bool   `json:"failed,omitempty"`
}

// WriteTable implements output.Tabular.
func (r *RestartResult) WriteTable(w io.Writer) error {
	if len(r.Workloads) == 0 {
		_, err := fmt.Fprintf(w, "Every running pod of namespace %s has the sidecar it should.\n", r.Namespace)
		return err
	}
	t := output.NewTable(w, "KIND", "NAME", "PODS WITHOUT SIDECAR", "RESULT")
	for _, wl := range r.Workloads {
		t.Row(wl.Kind, wl.Name, strconv.Itoa(wl.Pods), wl.Result)
	}
	return t.Flush()
}

func newRestartCommand(o *Options) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "restart-uninjected [-n NAMESPACE]",
		Short: "Restart the Deployments, StatefulSets and DaemonSets whose running pods lack the sidecar",
		Long: "restart-uninjected finds the running pods of an injection-enabled namespace that have no sidecar (they predate " +
			"the namespace label), as the operator does, and restarts their workloads the way the operator's " +
			"Mesh.spec.injection.restartUninjected does. Bare pods and Job pods are listed, not restarted.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := o.restartUninjected(cmd.Context(), dryRun)
			if err != nil {
				return err
			}
			if err := o.print(res, output.Table); err != nil {
				return err
			}
			if slices.ContainsFunc(res.Workloads, func(w RestartedWorkload) bool { return w.Failed }) {
				return &ExitError{Code: 1, Reason: "some workloads were not restarted"}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list the workloads without restarting them")
	return cmd
}

func (o *Options) restartUninjected(ctx context.Context, dryRun bool) (*RestartResult, error) {
	c, err := o.connect()
	if err != nil {
		return nil, err
	}
	ns := c.namespace
	in, err := namespaceInputs(ctx, c.client, ns)
	if err != nil {
		return nil, err
	}
	in.OperatorNamespace = o.OperatorNamespace
	report, bare := analyze.Uninjected(in)
	res := &RestartResult{Namespace: ns, DryRun: dryRun, Workloads: []RestartedWorkload{}}
	for _, ref := range slices.SortedFunc(maps.Keys(report.Workloads), uninjected.CompareWorkloads) {
		pods := report.Workloads[ref].Uninjected
		if pods == 0 {
			continue
		}
		wl := RestartedWorkload{Kind: ref.Kind, Name: ref.Name, Pods: pods, Result: "would restart"}
		if !dryRun {
			wl.Result, wl.Failed = restartWorkload(ctx, c.client, ref)
		}
		res.Workloads = append(res.Workloads, wl)
	}
	for _, p := range bare {
		res.Workloads = append(res.Workloads, RestartedWorkload{Kind: analyze.KindPod, Name: p.Name, Pods: 1,
			Result: "not restarted: no Deployment, StatefulSet or DaemonSet; delete and recreate it"})
	}
	return res, nil
}

// namespaceInputs reads the namespace, its pods and its ReplicaSets.
func namespaceInputs(ctx context.Context, c client.Client, ns string) (*analyze.Inputs, error) {
	namespace := &corev1.Namespace{}
	if err := c.Get(ctx, client.ObjectKey{Name: ns}, namespace); err != nil {
		return nil, fmt.Errorf("reading namespace %s: %w", ns, err)
	}
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing the pods of %s: %w", ns, err)
	}
	rs := &appsv1.ReplicaSetList{}
	if err := c.List(ctx, rs, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing the ReplicaSets of %s: %w", ns, err)
	}
	return &analyze.Inputs{Namespaces: []corev1.Namespace{*namespace}, Pods: pods.Items, ReplicaSets: rs.Items}, nil
}

// restartWorkload restarts one workload with uninjected.Restart.
func restartWorkload(ctx context.Context, c client.Client, ref uninjected.WorkloadRef) (string, bool) {
	var obj client.Object
	switch ref.Kind {
	case uninjected.KindDeployment:
		obj = &appsv1.Deployment{}
	case uninjected.KindStatefulSet:
		obj = &appsv1.StatefulSet{}
	default:
		obj = &appsv1.DaemonSet{}
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, obj); err != nil {
		return "not restarted: " + err.Error(), true
	}
	generation, err := uninjected.Restart(ctx, c, obj, time.Now())
	if err != nil {
		return "not restarted: " + err.Error(), true
	}
	return fmt.Sprintf("restarted (generation %d)", generation), false
}
