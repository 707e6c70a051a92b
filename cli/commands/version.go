package commands

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/spf13/cobra"

	"github.com/capstanmesh/capstan/cli/output"
)

// OperatorLabels select the operator's Deployment in its namespace.
var OperatorLabels = map[string]string{"app.kubernetes.io/name": "capstan", "app.kubernetes.io/component": "manager"}

// VersionResult is what `capstanctl version` prints.
type VersionResult struct {
	Client ClientVersion  `json:"client"`
	Server *ServerVersion `json:"server,omitempty"`
}

// ClientVersion is capstanctl's own version.
type ClientVersion struct {
	Version   string `json:"version"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// ServerVersion is the cluster's: Kubernetes and the operator (its image
// tag; "" when the operator is not found).
type ServerVersion struct {
	Kubernetes string `json:"kubernetes"`
	Operator   string `json:"operator,omitempty"`
	// OperatorImage is the operator container's image.
	OperatorImage string `json:"operatorImage,omitempty"`
}

// WriteTable implements output.Tabular.
func (v *VersionResult) WriteTable(w io.Writer) error {
	t := output.NewTable(w, "COMPONENT", "VERSION")
	t.Row("capstanctl", v.Client.Version)
	if v.Server != nil {
		t.Row("kubernetes", v.Server.Kubernetes)
		t.Row("operator", orNone(v.Server.Operator))
	}
	return t.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "<not found>"
	}
	return s
}

func newVersionCommand(o *Options) *cobra.Command {
	var clientOnly bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the versions of capstanctl, Kubernetes and the Capstan operator",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res := &VersionResult{Client: clientVersion()}
			if !clientOnly {
				sv, err := o.serverVersion(cmd.Context())
				if err != nil {
					return err
				}
				res.Server = sv
			}
			return o.print(res, output.Table)
		},
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "print capstanctl's version only, without contacting the cluster")
	return cmd
}

func clientVersion() ClientVersion {
	return ClientVersion{Version: Version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
}

func (o *Options) serverVersion(ctx context.Context) (*ServerVersion, error) {
	c, err := o.connect()
	if err != nil {
		return nil, err
	}
	info, err := c.discovery.ServerVersion()
	if err != nil {
		return nil, fmt.Errorf("reading the API server's version: %w", err)
	}
	sv := &ServerVersion{Kubernetes: info.GitVersion}
	if d, err := o.operatorDeployment(ctx); err == nil && d != nil && len(d.Spec.Template.Spec.Containers) > 0 {
		sv.OperatorImage = d.Spec.Template.Spec.Containers[0].Image
		sv.Operator = imageTag(sv.OperatorImage)
	}
	return sv, nil
}

// operatorDeployment finds the operator's Deployment (nil when none).
func (o *Options) operatorDeployment(ctx context.Context) (*appsv1.Deployment, error) {
	c, err := o.connect()
	if err != nil {
		return nil, err
	}
	list := &appsv1.DeploymentList{}
	if err := c.client.List(ctx, list, client.InNamespace(o.OperatorNamespace), client.MatchingLabels(OperatorLabels)); err != nil {
		return nil, fmt.Errorf("listing the operator's Deployments in %s: %w", o.OperatorNamespace, err)
	}
	if len(list.Items) == 0 {
		return nil, nil
	}
	return &list.Items[0], nil
}

// imageTag is the tag of an image reference ("" when it has none).
func imageTag(image string) string {
	image, _, _ = strings.Cut(image, "@")
	slash := strings.LastIndex(image, "/")
	if i := strings.LastIndex(image, ":"); i > slash {
		return image[i+1:]
	}
	return ""
}
