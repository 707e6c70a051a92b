package inject

import (
	"encoding/json"
	"strings"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/internal/re2"
	"github.com/capstanmesh/capstan/xds/ir"
)

// Environment variables of the proxy container, filled by the downward API.
// Kubernetes expands $(NAME) references to them in the container's args,
// which is how the bootstrap gets the pod's name, namespace and IP.
const (
	EnvPodName        = "POD_NAME"
	EnvPodNamespace   = "POD_NAMESPACE"
	EnvPodIP          = "POD_IP"
	EnvServiceAccount = "SERVICE_ACCOUNT"
	// EnvGRPCRoots points gRPC's own HTTP client (used for the token exchange)
	// at the mesh root CA.
	EnvGRPCRoots = "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"
	// EnvRootFingerprints holds the fingerprints of the roots in the root CA
	// ConfigMap, resolved when the proxy starts (as the mounted bundle is
	// read then); the bootstrap reports them as node metadata.
	EnvRootFingerprints = "CAPSTAN_ROOT_FINGERPRINTS"
)

// Node metadata keys in the bootstrap.
const (
	NodeMetaVersion     = "capstan.dev/version"
	NodeMetaTrustDomain = "capstan.dev/trust-domain"
	// NodeMetaRoots are the fingerprints of the roots the proxy read at
	// start (the root CA ConfigMap's, see meshv1alpha1.NodeMetaRoots).
	NodeMetaRoots = meshv1alpha1.NodeMetaRoots
)

// subjectTokenType is the STS type of a Kubernetes ServiceAccount token.
const subjectTokenType = "urn:ietf:params:oauth:token-type:jwt"

// The bootstrap, as the subset of Envoy's v3 Bootstrap message we set. Field
// names are the proto JSON names; struct order makes the output deterministic.
type (
	bootstrap struct {
		Node             node             `json:"node"`
		Admin            admin            `json:"admin"`
		DynamicResources dynamicResources `json:"dynamic_resources"`
		LayeredRuntime   layeredRuntime   `json:"layered_runtime"`
		StatsConfig      statsConfig      `json:"stats_config"`
	}
	// layeredRuntime is a static layer of fixed runtime values, then the admin
	// layer (the one Envoy uses when the bootstrap names no runtime).
	layeredRuntime struct {
		Layers []runtimeLayer `json:"layers"`
	}
	runtimeLayer struct {
		Name        string         `json:"name"`
		StaticLayer map[string]int `json:"static_layer,omitempty"`
		AdminLayer  *struct{}      `json:"admin_layer,omitempty"`
	}
	node struct {
		ID       string            `json:"id"`
		Cluster  string            `json:"cluster"`
		Metadata map[string]string `json:"metadata"`
	}
	admin struct {
		Address address `json:"address"`
	}
	address struct {
		SocketAddress socketAddress `json:"socket_address"`
	}
	socketAddress struct {
		Address   string `json:"address"`
		PortValue int    `json:"port_value"`
	}
	dynamicResources struct {
		ADSConfig apiConfigSource `json:"ads_config"`
		CDSConfig configSource    `json:"cds_config"`
		LDSConfig configSource    `json:"lds_config"`
	}
	apiConfigSource struct {
		APIType                   string        `json:"api_type"`
		TransportAPIVersion       string        `json:"transport_api_version"`
		SetNodeOnFirstMessageOnly bool          `json:"set_node_on_first_message_only"`
		GRPCServices              []grpcService `json:"grpc_services"`
	}
	configSource struct {
		ADS                 struct{} `json:"ads"`
		ResourceAPIVersion  string   `json:"resource_api_version"`
		InitialFetchTimeout string   `json:"initial_fetch_timeout"`
	}
	grpcService struct {
		GoogleGRPC googleGRPC `json:"google_grpc"`
	}
	googleGRPC struct {
		TargetURI          string             `json:"target_uri"`
		StatPrefix         string             `json:"stat_prefix"`
		ChannelCredentials channelCredentials `json:"channel_credentials"`
		CallCredentials    []callCredentials  `json:"call_credentials"`
	}
	channelCredentials struct {
		SSLCredentials sslCredentials `json:"ssl_credentials"`
	}
	sslCredentials struct {
		RootCerts dataSource `json:"root_certs"`
	}
	dataSource struct {
		Filename string `json:"filename"`
	}
	callCredentials struct {
		STSService stsService `json:"sts_service"`
	}
	stsService struct {
		TokenExchangeServiceURI string `json:"token_exchange_service_uri"`
		Audience                string `json:"audience"`
		SubjectTokenPath        string `json:"subject_token_path"`
		SubjectTokenType        string `json:"subject_token_type"`
	}
)

// envRef is a reference Kubernetes expands in container args.
func envRef(name string) string { return "$(" + name + ")" }

// escapeExpansion doubles '$' so that Kubernetes leaves s as it is.
func escapeExpansion(s string) string { return strings.ReplaceAll(s, "$", "$$") }

// bootstrapJSON is the proxy's Envoy bootstrap, compact JSON (valid YAML) for
// --config-yaml. It names the node per DESIGN.md from the downward API, and
// takes listeners and clusters (and, through them, routes, endpoints and
// secrets) over delta ADS from the xDS server, over TLS verified against the
// mesh root, authenticated with the pod's projected ServiceAccount token
// through gRPC's STS call credentials.
func bootstrapJSON(cfg Config, workload string) string {
	ads := configSource{ResourceAPIVersion: "V3", InitialFetchTimeout: "0s"}
	b := bootstrap{
		Node: node{
			ID:      ir.SidecarNodeID(envRef(EnvPodIP), envRef(EnvPodName), envRef(EnvPodNamespace)),
			Cluster: envRef(EnvServiceAccount) + "." + envRef(EnvPodNamespace),
			Metadata: map[string]string{
				NodeMetaVersion:     escapeExpansion(cfg.Version),
				NodeMetaTrustDomain: escapeExpansion(cfg.TrustDomain),
				NodeMetaRoots:       envRef(EnvRootFingerprints),
			},
		},
		Admin: admin{Address: address{SocketAddress: socketAddress{
			Address: "127.0.0.1", PortValue: meshv1alpha1.PortEnvoyAdmin,
		}}},
		DynamicResources: dynamicResources{
			ADSConfig: apiConfigSource{
				APIType:                   "DELTA_GRPC",
				TransportAPIVersion:       "V3",
				SetNodeOnFirstMessageOnly: true,
				GRPCServices:              []grpcService{{GoogleGRPC: xdsGRPC(cfg)}},
			},
			CDSConfig: ads,
			LDSConfig: ads,
		},
		LayeredRuntime: runtime(),
		StatsConfig:    statsTags(workload),
	}
	out, err := json.Marshal(b)
	if err != nil {
		panic("inject: marshal bootstrap: " + err.Error()) // plain structs of strings cannot fail
	}
	return string(out)
}

// runtime pins the RE2 program size limit of regexes to the one Capstan
// enforces (internal/re2), so that Envoy refuses exactly what Capstan refuses.
func runtime() layeredRuntime {
	static := map[string]int{}
	for _, key := range re2.RuntimeKeys {
		static[key] = re2.MaxProgramSize
	}
	return layeredRuntime{Layers: []runtimeLayer{
		{Name: "capstan", StaticLayer: static},
		{Name: "admin", AdminLayer: &struct{}{}},
	}}
}

func xdsGRPC(cfg Config) googleGRPC {
	return googleGRPC{
		TargetURI:  escapeExpansion(cfg.XDSAddress),
		StatPrefix: "capstan_xds",
		ChannelCredentials: channelCredentials{SSLCredentials: sslCredentials{
			RootCerts: dataSource{Filename: RootCAPath},
		}},
		CallCredentials: []callCredentials{{STSService: stsService{
			TokenExchangeServiceURI: escapeExpansion(cfg.TokenExchangeURL),
			Audience:                TokenAudience,
			SubjectTokenPath:        TokenPath,
			SubjectTokenType:        subjectTokenType,
		}}},
	}
}
