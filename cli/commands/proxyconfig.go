package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/capstanmesh/capstan/cli/output"
	"github.com/capstanmesh/capstan/xds/debugapi"
)

// typeBootstrap is proxy-config's one type not served over xDS: the
// sidecar's bootstrap, read from the pod (the injector wrote it there).
const typeBootstrap = "bootstrap"

// proxyConfigTypes are proxy-config's types, in help order.
var proxyConfigTypes = append(slices.Clone(debugapi.TypeNames), typeBootstrap)

// ProxyConfigResult is what `capstanctl proxy-config` prints: the
// resources of one type that the control plane serves a pod's proxy.
type ProxyConfigResult struct {
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	debugapi.Config
}

// WriteTable implements output.Tabular: one row per resource, its summary
// columns and version; -o json or yaml shows each resource whole.
func (r *ProxyConfigResult) WriteTable(w io.Writer) error {
	if len(r.Resources) == 0 {
		_, err := fmt.Fprintf(w, "No %s are served to %s/%s.\n", r.Type, r.Namespace, r.Pod)
		return err
	}
	t := output.NewTable(w, append(append([]string{"NAME"}, r.Columns...), "VERSION")...)
	for _, res := range r.Resources {
		t.Row(append(append([]string{res.Name}, res.Summary...), short(res.Version))...)
	}
	return t.Flush()
}

func newProxyConfigCommand(o *Options) *cobra.Command {
	var flags debugFlags
	cmd := &cobra.Command{
		Use:   "proxy-config POD [" + strings.Join(proxyConfigTypes, "|") + "]",
		Short: "Show the configuration the control plane serves a pod's proxy (secrets without private keys)",
		Long: "proxy-config asks the operator's debug endpoint, through the API server's service proxy, for the\n" +
			"resources of one type (default listeners) that the control plane serves the proxy of POD in -n's\n" +
			"namespace: a summary table, or each resource's Envoy JSON with -o json|yaml. Secrets carry their\n" +
			"certificates and roots, never a private key. bootstrap is read from the pod itself (the injector\n" +
			"wrote it into the sidecar's arguments).",
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			typ := debugapi.TypeListeners
			if len(args) == 2 {
				typ = args[1]
			}
			if !slices.Contains(proxyConfigTypes, typ) {
				return fmt.Errorf("unknown type %q: want one of %s", typ, strings.Join(proxyConfigTypes, ", "))
			}
			ns := o.namespaceOrDefault()
			if typ == typeBootstrap {
				return o.printBootstrap(cmd.Context(), ns, args[0])
			}
			return o.proxyConfig(cmd.Context(), flags, ns, args[0], typ)
		},
	}
	flags.bind(cmd.Flags())
	return cmd
}

func (o *Options) proxyConfig(ctx context.Context, flags debugFlags, ns, pod, typ string) error {
	res := &ProxyConfigResult{Namespace: ns, Pod: pod}
	q := url.Values{"namespace": {ns}, "pod": {pod}, "type": {typ}}
	if err := o.debugGet(ctx, flags, debugapi.PathConfig, q, &res.Config); err != nil {
		return err
	}
	return o.print(res, output.Table)
}

// BootstrapResult is `capstanctl proxy-config POD bootstrap`: the Envoy
// bootstrap of the pod's sidecar, with the downward-API references
// Kubernetes expands filled in from the pod.
type BootstrapResult struct {
	Namespace string          `json:"namespace"`
	Pod       string          `json:"pod"`
	Bootstrap json.RawMessage `json:"bootstrap"`
}

// WriteTable implements output.Tabular: the fields that identify the proxy
// to the control plane; -o json or yaml shows the whole bootstrap.
func (r *BootstrapResult) WriteTable(w io.Writer) error {
	var b struct {
		Node struct {
			ID       string            `json:"id"`
			Cluster  string            `json:"cluster"`
			Metadata map[string]string `json:"metadata"`
		} `json:"node"`
		DynamicResources struct {
			ADS struct {
				APIType  string `json:"api_type"`
				Services []struct {
					GoogleGRPC struct {
						TargetURI string `json:"target_uri"`
					} `json:"google_grpc"`
				} `json:"grpc_services"`
			} `json:"ads_config"`
		} `json:"dynamic_resources"`
	}
	if err := json.Unmarshal(r.Bootstrap, &b); err != nil {
		return fmt.Errorf("reading the bootstrap: %w", err)
	}
	t := output.NewTable(w, "FIELD", "VALUE")
	t.Row("node.id", b.Node.ID)
	t.Row("node.cluster", b.Node.Cluster)
	for _, k := range slices.Sorted(maps.Keys(b.Node.Metadata)) {
		t.Row("node.metadata."+k, b.Node.Metadata[k])
	}
	t.Row("ads.api_type", b.DynamicResources.ADS.APIType)
	for _, s := range b.DynamicResources.ADS.Services {
		t.Row("ads.target_uri", s.GoogleGRPC.TargetURI)
	}
	return t.Flush()
}
