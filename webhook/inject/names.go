package inject

import (
	"strconv"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// Names of what Inject adds to a pod.
const (
	// InitContainerName is the init container that installs the traffic capture rules.
	InitContainerName = "capstan-init"
	// VolumeToken holds the projected ServiceAccount token the proxy presents to the xDS server.
	VolumeToken = "capstan-token"
	// VolumeRootCA holds the mesh root CA that the proxy verifies the xDS server against.
	VolumeRootCA = "capstan-root-ca"
	// VolumeEnvoy is an emptyDir for the few files Envoy writes (mounted on /tmp).
	VolumeEnvoy = "capstan-envoy"
	// PromPortName names the proxy's Prometheus port.
	PromPortName = "capstan-prom"
)

// What the injected proxy expects to find in the pod's namespace and on disk.
const (
	// RootCAConfigMap is the ConfigMap, in every injected pod's namespace, holding the mesh root CA.
	// rootca.Publisher keeps it filled; a pod cannot start until it exists.
	RootCAConfigMap = meshv1alpha1.RootCAConfigMapName
	// RootCAKey is the ConfigMap key (and file name) of the PEM root bundle.
	RootCAKey = meshv1alpha1.RootCAConfigMapKey
	// RootCADir is where the root CA is mounted in the proxy.
	RootCADir = "/var/run/secrets/capstan/root-ca"
	// RootCAPath is the root CA file the proxy reads.
	RootCAPath = RootCADir + "/" + RootCAKey
	// TokenAudience is the audience of the projected ServiceAccount token.
	TokenAudience = "capstan"
	// TokenExpirationSeconds is the lifetime the kubelet requests for the token; it renews it at 80%.
	TokenExpirationSeconds = 3600
	// TokenDir is where the token volume is mounted in the proxy.
	TokenDir = "/var/run/secrets/capstan/tokens"
	// TokenPath is the token file the proxy presents.
	TokenPath = TokenDir + "/token"
	// EnvoyTmpDir is where VolumeEnvoy is mounted.
	EnvoyTmpDir = "/tmp"
)

// Health paths served by the proxy on meshv1alpha1.PortHealth.
const (
	// HealthReadyPath answers 200 once Envoy has its first configuration.
	HealthReadyPath = "/healthz/ready"
	// AppHealthPrefix starts the paths that rewritten application probes use.
	AppHealthPrefix = "/app-health/"
)

// ProbeKind names one of a container's three probes in an app-health path.
type ProbeKind string

// Probe kinds, as they appear in app-health paths.
const (
	ProbeLiveness  ProbeKind = "livez"
	ProbeReadiness ProbeKind = "readyz"
	ProbeStartup   ProbeKind = "startupz"
)

// AppHealthPath is the sidecar path that answers for one probe of one
// container: /app-health/<container>/<livez|readyz|startupz>.
func AppHealthPath(container string, kind ProbeKind) string {
	return AppHealthPrefix + container + "/" + string(kind)
}

// wellKnownExcludedInbound are the proxy's own ports, never captured inbound.
var wellKnownExcludedInbound = []int32{
	meshv1alpha1.PortEnvoyAdmin, meshv1alpha1.PortHealth, meshv1alpha1.PortStats,
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
