package commands

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/capstanmesh/capstan/cli/analyze"
	"github.com/capstanmesh/capstan/cli/output"
)

// AnalyzeResult is what `capstanctl analyze` prints.
type AnalyzeResult struct {
	// Scope is the namespace analyzed, or "all namespaces".
	Scope    string            `json:"scope"`
	Source   string            `json:"source"`
	Errors   int               `json:"errors"`
	Warnings int               `json:"warnings"`
	Findings []analyze.Finding `json:"findings"`
	// Notes say what could not be read (missing permissions).
	Notes []string `json:"notes,omitempty"`
}

// WriteTable implements output.Tabular: one row per finding, then each fix.
func (r *AnalyzeResult) WriteTable(w io.Writer) error {
	if len(r.Findings) == 0 {
		_, err := fmt.Fprintf(w, "No problems found in %s (%s).\n%s", r.Scope, r.Source, r.notes())
		return err
	}
	t := output.NewTable(w, "CODE", "SEVERITY", "OBJECT", "MESSAGE")
	for _, f := range r.Findings {
		t.Row(f.Code, string(f.Severity), f.Object.String(), f.Message)
	}
	if err := t.Flush(); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%d error(s), %d warning(s) in %s (%s). Fixes:\n", r.Errors, r.Warnings, r.Scope, r.Source)
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "\n%s %s:\n  %s\n", f.Code, f.Object, strings.ReplaceAll(strings.TrimRight(f.Fix, "\n"), "\n", "\n  "))
	}
	b.WriteString(r.notes())
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *AnalyzeResult) notes() string {
	var b strings.Builder
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "Note: %s.\n", n)
	}
	return b.String()
}

func newAnalyzeCommand(o *Options) *cobra.Command {
	var files []string
	var window time.Duration
	cmd := &cobra.Command{
		Use:   "analyze [-n NAMESPACE | -A] [-f FILE ...]",
		Short: "Find mesh misconfigurations on the live cluster, or offline in YAML files",
		Long: "analyze reads the cluster (or, with -f, YAML files and directories, - for standard input) and reports problems, " +
			"each with a stable code (CAP001...), a severity, the objects involved and the fix. " +
			"It exits with status 1 when it finds an error. Callers in other namespaces are taken into account " +
			"whatever namespace is analyzed. On the live cluster it also reads the sidecars' counters twice, " +
			"--traffic-window apart, through the API server's pod proxy: callers refused by STRICT (CAP010), plaintext " +
			"callers of workloads that could be made STRICT (CAP011), and the share of a weighted route's traffic that " +
			"bypassed the mesh (CAP012).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := o.analyze(cmd, files, window)
			if err != nil {
				return err
			}
			if err := o.print(res, output.Table); err != nil {
				return err
			}
			if res.Errors > 0 {
				return &ExitError{Code: 1, Reason: fmt.Sprintf("%d error(s) found", res.Errors)}
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVarP(&files, "filename", "f", nil, "YAML files or directories to analyze offline instead of the cluster")
	cmd.Flags().DurationVar(&window, "traffic-window", defaultTrafficWindow,
		"how long to watch the sidecars' counters for live evidence (0: do not read them)")
	return cmd
}

// defaultTrafficWindow is how long analyze watches the sidecars' counters.
const defaultTrafficWindow = 10 * time.Second

func (o *Options) analyze(cmd *cobra.Command, files []string, window time.Duration) (*AnalyzeResult, error) {
	var in *analyze.Inputs
	var err error
	res := &AnalyzeResult{Source: "cluster"}
	namespace := ""
	if len(files) > 0 {
		res.Source = "files"
		in, err = readFiles(files, o.namespaceOrDefault(), o.In)
		if !o.AllNamespaces {
			namespace = o.Namespace
		}
	} else {
		if _, err = o.connect(); err != nil {
			return nil, err
		}
		if !o.AllNamespaces {
			namespace = o.cluster.namespace
		}
		in, res.Notes, err = o.gatherLive(cmd.Context(), namespace)
		if err == nil && window > 0 {
			var notes []string
			in.Traffic, notes, err = o.liveTraffic(cmd.Context(), in, namespace, window)
			res.Notes = append(res.Notes, notes...)
		}
	}
	if err != nil {
		return nil, err
	}
	in.OperatorNamespace = o.OperatorNamespace
	findings := analyze.Run(in)
	res.Scope = "all namespaces"
	if namespace != "" {
		findings = analyze.InNamespace(findings, namespace)
		res.Scope = "namespace " + namespace
	}
	res.Findings = findings
	if res.Findings == nil {
		res.Findings = []analyze.Finding{}
	}
	for _, f := range findings {
		switch f.Severity {
		case analyze.SeverityError:
			res.Errors++
		case analyze.SeverityWarning:
			res.Warnings++
		}
	}
	return res, nil
}

// liveTraffic samples the sidecars of the pods the live analyzers look at.
func (o *Options) liveTraffic(ctx context.Context, in *analyze.Inputs, namespace string, window time.Duration) (*analyze.Traffic, []string, error) {
	pods, truncated := analyze.LivePods(in, namespace)
	if len(pods) == 0 {
		return nil, nil, nil
	}
	c, err := o.connect()
	if err != nil {
		return nil, nil, err
	}
	t, notes, err := sampleTraffic(ctx, c, pods, window)
	if truncated {
		notes = append(notes, fmt.Sprintf("only the first %d meshed pods were read for live evidence", len(pods)))
	}
	return t, notes, err
}
