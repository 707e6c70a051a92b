package commands

import (
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/capstanmesh/capstan/cli/output"
	"github.com/capstanmesh/capstan/xds/debugapi"
)

// ProxyStatusResult is what `capstanctl proxy-status` prints: every proxy
// the control plane knows, and how each resource type stands with it.
type ProxyStatusResult struct {
	// Namespace is -n, or empty for every namespace (-A, the default).
	Namespace string           `json:"namespace,omitempty"`
	Proxies   []debugapi.Proxy `json:"proxies"`
}

// shortVersion is how many characters of a version the table shows.
const shortVersion = 8

// maxNackCell bounds the NACK text in the table (JSON and YAML carry all
// of what the control plane kept).
const maxNackCell = 100

// WriteTable implements output.Tabular.
func (r *ProxyStatusResult) WriteTable(w io.Writer) error {
	if len(r.Proxies) == 0 {
		_, err := fmt.Fprintln(w, "No proxies are known to the control plane.")
		return err
	}
	headers := []string{"NAMESPACE", "POD", "KIND", "STREAMS"}
	for _, name := range debugapi.TypeNames {
		headers = append(headers, strings.ToUpper(name))
	}
	t := output.NewTable(w, append(headers, "LAST NACK")...)
	for _, p := range r.Proxies {
		row := []string{orDash(p.Namespace), orDash(p.Pod), p.Kind, strconv.Itoa(p.Streams)}
		for _, name := range debugapi.TypeNames {
			row = append(row, typeCell(p, name))
		}
		t.Row(append(row, lastNack(p))...)
	}
	return t.Flush()
}

// typeCell is a type's state and the version the proxy ACKed.
func typeCell(p debugapi.Proxy, name string) string {
	for _, ts := range p.Types {
		if ts.Type != name {
			continue
		}
		if ts.Acked == "" {
			return ts.State
		}
		return ts.State + " " + short(ts.Acked)
	}
	return "-"
}

// lastNack is the latest NACK of any type, with its type.
func lastNack(p debugapi.Proxy) string {
	var latest *debugapi.Nack
	var typ string
	for _, ts := range p.Types {
		if n := ts.LastNack; n != nil && (latest == nil || n.At.After(latest.At)) {
			latest, typ = n, ts.Type
		}
	}
	if latest == nil {
		return "-"
	}
	msg := typ + ": " + latest.Message
	if len(msg) > maxNackCell {
		msg = msg[:maxNackCell-3] + "..."
	}
	return msg
}

func short(version string) string {
	if len(version) > shortVersion {
		return version[:shortVersion]
	}
	return version
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newProxyStatusCommand(o *Options) *cobra.Command {
	var flags debugFlags
	cmd := &cobra.Command{
		Use:   "proxy-status",
		Short: "Show each proxy the control plane serves: per resource type SYNCED, STALE or NACK, and the last NACK",
		Long: "proxy-status asks the operator's debug endpoint, through the API server's service proxy, for every\n" +
			"connected proxy (-A, the default) or those of one namespace (-n): per resource type the state\n" +
			"(SYNCED: ACKed what is served; STALE: a newer version is served; NACK: rejected; NOT SENT) with\n" +
			"the version it ACKed, and the text of the latest NACK. See docs/cli.md for the permissions it needs.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res := &ProxyStatusResult{}
			if !o.AllNamespaces {
				res.Namespace = o.Namespace
			}
			var list debugapi.ProxyList
			if err := o.debugGet(cmd.Context(), flags, debugapi.PathProxies, url.Values{"namespace": {res.Namespace}}, &list); err != nil {
				return err
			}
			res.Proxies = list.Proxies
			return o.print(res, output.Table)
		},
	}
	flags.bind(cmd.Flags())
	return cmd
}
