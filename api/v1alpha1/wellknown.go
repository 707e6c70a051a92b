package v1alpha1

// Labels and annotations Capstan reads or writes on Kubernetes objects.
const (
	// LabelInject on a namespace ("enabled") turns injection on; on a pod ("true"/"false") overrides it.
	LabelInject = "capstan.dev/inject"
	// InjectEnabled is the namespace label value that turns injection on.
	InjectEnabled = "enabled"
	// AnnotationStatus is written by the injector on injected pods (injected version, containers added).
	AnnotationStatus = "capstan.dev/status"
	// AnnotationAllowAggressiveEjection admits outlier detection settings that can eject a whole pool.
	AnnotationAllowAggressiveEjection = "capstan.dev/allow-aggressive-ejection"
	// AnnotationGenerator on a pod ("grpc") says that its application is a proxyless
	// gRPC client that fetches config from Capstan itself (see docs/proxyless-grpc.md);
	// the same key in the xDS node metadata names the generator the client expects.
	AnnotationGenerator = "capstan.dev/generator"
	// GeneratorGRPC is the AnnotationGenerator value of proxyless gRPC clients.
	GeneratorGRPC = "grpc"
	// EventSource is the reporting controller name on the Events Capstan records.
	EventSource = "capstan"
	// ProxyContainerName is the name of the injected Envoy container.
	ProxyContainerName = "capstan-proxy"
	// ProxyUID is the UID Envoy runs as; its traffic is not captured.
	ProxyUID = 1337
)

// Well-known proxy ports.
const (
	PortOutboundCapture = 15001
	PortInboundCapture  = 15006
	PortEnvoyAdmin      = 15000
	PortStats           = 15090
	PortHealth          = 15021
	PortXDS             = 15012
	PortWebhook         = 9443
	PortMetrics         = 8080
)

// Pod annotations read or written by the sidecar injector (see docs/injection.md).
const (
	// AnnotationExcludeInboundPorts lists ports (comma-separated) whose inbound traffic is not captured.
	AnnotationExcludeInboundPorts = "capstan.dev/exclude-inbound-ports"
	// AnnotationExcludeOutboundPorts lists destination ports (comma-separated) whose outbound traffic is not captured.
	AnnotationExcludeOutboundPorts = "capstan.dev/exclude-outbound-ports"
	// AnnotationExcludeOutboundIPRanges lists destination CIDRs (comma-separated) whose outbound traffic is not captured.
	AnnotationExcludeOutboundIPRanges = "capstan.dev/exclude-outbound-ip-ranges"
	// AnnotationProxyCPU is the sidecar's CPU request (a resource quantity).
	AnnotationProxyCPU = "capstan.dev/proxy-cpu"
	// AnnotationProxyMemory is the sidecar's memory request (a resource quantity).
	AnnotationProxyMemory = "capstan.dev/proxy-memory"
	// AnnotationProxyLogLevel is the sidecar's Envoy log level.
	AnnotationProxyLogLevel = "capstan.dev/proxy-log-level"
	// AnnotationDependencies on a pod or a namespace lists (comma-separated)
	// the destinations its sidecars get mesh config for besides their own
	// namespace's services: name.namespace, an FQDN
	// (name.namespace.svc.cluster.local), namespace/* or * (docs/scoping.md).
	AnnotationDependencies = "capstan.dev/dependencies"
	// AnnotationOriginalProbes is written by the injector: the app's HTTP probes before they were
	// rewritten to the sidecar's health port, as JSON keyed by the rewritten path.
	AnnotationOriginalProbes = "capstan.dev/original-probes"
)

// The mesh root CA that Capstan publishes in every namespace with injection
// enabled, for proxies to verify the xDS server against.
const (
	// RootCAConfigMapName is the ConfigMap holding the root bundle.
	RootCAConfigMapName = "capstan-root-ca"
	// RootCAConfigMapKey is its key (and the file name in the proxy), a PEM bundle.
	RootCAConfigMapKey = "root-cert.pem"
	// RootCAConfigMapFingerprintsKey holds the SHA-256 fingerprints of the
	// bundle's roots, comma-separated. The injected proxy reads it into an
	// environment variable at start and reports it as node metadata
	// NodeMetaRoots, so the control plane knows which roots each running
	// proxy verifies the xDS server with.
	RootCAConfigMapFingerprintsKey = "root-fingerprints"
	// NodeMetaRoots is the node metadata key under which a proxy reports the
	// fingerprints of the roots it read at start.
	NodeMetaRoots = "capstan.dev/roots"
)
