package commands

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"

	"github.com/capstanmesh/capstan/cli/output"
)

// Check statuses.
const (
	CheckOK      = "OK"
	CheckWarning = "Warning"
	CheckFailed  = "Failed"
	CheckSkipped = "Skipped"
)

// CheckResult is what `capstanctl check` prints.
type CheckResult struct {
	Checks []Check `json:"checks"`
}

// Check is one check: its name, status and what it found.
type Check struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

// WriteTable implements output.Tabular.
func (r *CheckResult) WriteTable(w io.Writer) error {
	t := output.NewTable(w, "CHECK", "STATUS", "MESSAGE")
	for _, c := range r.Checks {
		t.Row(c.Name, c.Status, c.Message)
	}
	return t.Flush()
}

// Failed reports whether a check failed.
func (r *CheckResult) Failed() bool {
	return slices.ContainsFunc(r.Checks, func(c Check) bool { return c.Status == CheckFailed })
}

// checker is one check, given the connection.
type checker struct {
	name string
	run  func(ctx context.Context, o *Options, c *cluster) (status, message string)
}

// checkers run in this order.
var checkers = []checker{
	{"kubernetes-version", checkKubernetesVersion},
	{"crds", checkCRDs},
	{"operator", checkOperator},
	{"webhook", checkWebhook},
	{"issuer", checkIssuer},
}

func newCheckCommand(o *Options) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Check the installation: Kubernetes version, CRDs, operator, webhook and certificate issuer",
		Long: "check verifies that the API server supports native sidecars (Kubernetes 1.28+), that Capstan's CRDs are installed " +
			"and the ones this capstanctl was built with, that the operator is ready, that the API server reaches the injection " +
			"webhook with a valid certificate (a server-side dry-run pod creation), and that the cert-manager issuer the Mesh names " +
			"is ready. It exits with status 1 when a check fails.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.connect()
			if err != nil {
				return err
			}
			res := &CheckResult{}
			for _, ch := range checkers {
				status, msg := ch.run(cmd.Context(), o, c)
				res.Checks = append(res.Checks, Check{Name: ch.name, Status: status, Message: msg})
			}
			if err := o.print(res, output.Table); err != nil {
				return err
			}
			if res.Failed() {
				return &ExitError{Code: 1, Reason: "a check failed"}
			}
			return nil
		},
	}
}

// failed formats a failed check's message.
func failed(format string, args ...any) (string, string) {
	return CheckFailed, fmt.Sprintf(format, args...)
}
