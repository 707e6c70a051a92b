// Package commands is capstanctl, the Capstan CLI, also installed as the
// kubectl plugin kubectl-capstan: one cobra command per subcommand, each
// printing one result value as a table, JSON or YAML (cli/output). They
// read the cluster with the user's kubeconfig (client-go's loading rules:
// --kubeconfig, $KUBECONFIG, ~/.kube/config; --context; -n and -A), or
// YAML files with -f. The analyzers themselves are pure (cli/analyze).
//
// A subcommand is one constructor in subcommands. proxy-status and
// proxy-config read the operator's debug endpoint (xds/debug) through the
// API server's service proxy; they share its wire format (xds/debugapi),
// never its code.
package commands

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/capstanmesh/capstan/cli/output"
	"github.com/capstanmesh/capstan/webhook/inject"
)

// Version is capstanctl's version, set at build time with
// -ldflags "-X github.com/capstanmesh/capstan/cli/commands.Version=...".
var Version = inject.DefaultVersion

// Options are the global flags and the streams.
type Options struct {
	Kubeconfig        string
	Context           string
	Namespace         string
	AllNamespaces     bool
	Output            string
	OperatorNamespace string

	Out, Err io.Writer
	In       io.Reader

	cluster *cluster
}

// subcommands are capstanctl's subcommands, in help order.
var subcommands = []func(*Options) *cobra.Command{
	newVersionCommand,
	newCheckCommand,
	newAnalyzeCommand,
	newInjectCommand,
	newRestartCommand,
	newProxyStatusCommand,
	newProxyConfigCommand,
}

// NewRoot returns the capstanctl command writing to out and err. name is
// how the user called it ("capstanctl", or "kubectl capstan" as a plugin).
func NewRoot(name string, in io.Reader, out, err io.Writer) *cobra.Command {
	o := &Options{Out: out, Err: err, In: in}
	root := &cobra.Command{
		Use:           strings.ReplaceAll(name, " ", "-"),
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: name},
		Short:         "Inspect and troubleshoot a Capstan service mesh",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	root.SetErr(err)
	root.SetIn(in)
	f := root.PersistentFlags()
	f.StringVar(&o.Kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	f.StringVar(&o.Context, "context", "", "the kubeconfig context to use")
	f.StringVarP(&o.Namespace, "namespace", "n", "", "the namespace (default: the context's namespace)")
	f.BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "every namespace")
	f.StringVarP(&o.Output, "output", "o", "", "output format: table, json or yaml")
	f.StringVar(&o.OperatorNamespace, "operator-namespace", inject.DefaultOperatorNamespace, "the namespace the Capstan operator runs in")
	for _, sub := range subcommands {
		root.AddCommand(sub(o))
	}
	return root
}

// ExitError ends capstanctl with Code after the result was printed (for
// example analyze finding errors): nothing more is printed.
type ExitError struct {
	Code   int
	Reason string
}

func (e *ExitError) Error() string { return e.Reason }

// Execute runs capstanctl with args and returns the exit status.
func Execute(name string, args []string, in io.Reader, out, errOut io.Writer) int {
	root := NewRoot(name, in, out, errOut)
	root.SetArgs(args)
	err := root.Execute()
	if exit := (*ExitError)(nil); errors.As(err, &exit) {
		return exit.Code
	}
	if err != nil {
		_, _ = fmt.Fprintln(errOut, "Error:", err)
		return 1
	}
	return 0
}

// print writes the result in the -o format (def when -o is not given).
func (o *Options) print(v output.Tabular, def output.Format) error {
	f, err := output.ParseFormat(o.Output, def)
	if err != nil {
		return err
	}
	return output.Print(o.Out, f, v)
}
