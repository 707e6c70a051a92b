package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MeshName is the name of the one Mesh object Capstan accepts.
const MeshName = "default"

// DefaultProxyImage is the stock Envoy image injected when Mesh.spec.proxy.image is empty.
const DefaultProxyImage = "envoyproxy/envoy:v1.40.0"

// MTLSMode is the mesh-wide mTLS default.
// +kubebuilder:validation:Enum=STRICT;PERMISSIVE
type MTLSMode string

// Mesh-wide mTLS modes.
const (
	MTLSStrict     MTLSMode = "STRICT"
	MTLSPermissive MTLSMode = "PERMISSIVE"
)

// CertificateProvider names who signs workload certificates.
// +kubebuilder:validation:Enum=BuiltIn;CertManager
type CertificateProvider string

// Certificate providers.
const (
	ProviderBuiltIn     CertificateProvider = "BuiltIn"
	ProviderCertManager CertificateProvider = "CertManager"
)

// MeshSpec is the mesh-wide configuration.
type MeshSpec struct {
	// TrustDomain is the SPIFFE trust domain of workload identities.
	// +kubebuilder:default="cluster.local"
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	TrustDomain string `json:"trustDomain,omitempty"`

	// TrustDomainAliases are other trust domains whose identities count as
	// this mesh's: a client that verifies a service's SPIFFE IDs also
	// accepts the same namespace and ServiceAccount under each alias. Set
	// it while changing trustDomain (see docs/security.md, "Changing the CA
	// or trust domain"), and remove it when the change is done.
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +listType=set
	// +optional
	TrustDomainAliases []string `json:"trustDomainAliases,omitempty"`

	// MTLS is the mesh-wide mTLS default; PeerAuthentication overrides it.
	// +kubebuilder:default={}
	// +optional
	MTLS MeshMTLS `json:"mtls,omitempty"`

	// Certificates configures who issues workload certificates and for how long.
	// +kubebuilder:default={}
	// +optional
	Certificates Certificates `json:"certificates,omitempty"`

	// Proxy configures the injected Envoy sidecar.
	// +kubebuilder:default={}
	// +optional
	Proxy ProxyConfig `json:"proxy,omitempty"`

	// Injection configures sidecar injection.
	// +kubebuilder:default={}
	// +optional
	Injection Injection `json:"injection,omitempty"`

	// Telemetry configures access logs and tracing.
	// +kubebuilder:default={}
	// +optional
	Telemetry Telemetry `json:"telemetry,omitempty"`

	// Traffic holds mesh-wide defaults of the sidecars' HTTP traffic.
	// +optional
	Traffic MeshTraffic `json:"traffic,omitempty"`

	// Scoping says which services each sidecar gets config for
	// (docs/scoping.md).
	// +optional
	Scoping MeshScoping `json:"scoping,omitempty"`
}

// ScopingMode says which services each sidecar gets config for.
// +kubebuilder:validation:Enum=Scoped;MeshWide
type ScopingMode string

// Scoping modes.
const (
	// ScopingScoped: a sidecar gets the services of its own namespace, the
	// hosts its namespace's MeshRoutes reference and the dependencies its pod
	// or namespace declares (capstan.dev/dependencies); other destinations go
	// through the passthrough cluster, without mesh routing.
	ScopingScoped ScopingMode = "Scoped"
	// ScopingMeshWide: every sidecar gets every service of the mesh.
	ScopingMeshWide ScopingMode = "MeshWide"
)

// DefaultMaxClustersPerNamespace is the default of
// MeshScoping.MaxClustersPerNamespace.
const DefaultMaxClustersPerNamespace = 2000

// MeshScoping says which services each sidecar gets config for, and bounds
// what one namespace's objects may add to the config of the mesh.
type MeshScoping struct {
	// Mode is Scoped (the default) or MeshWide.
	// +optional
	Mode ScopingMode `json:"mode,omitempty"`

	// MaxClustersPerNamespace bounds the outbound clusters the Services of one
	// namespace add to a sidecar's config: one per service port, plus one per
	// port and subset of the service's DestinationPolicy. Past the bound the
	// subsets of the policy that crosses it are left out (its Accepted
	// condition says so), and a Service whose ports alone cross it is left
	// out of the mesh config (its callers reach it through the passthrough
	// cluster). Unset means 2000.
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxClustersPerNamespace *int32 `json:"maxClustersPerNamespace,omitempty"`
}

// MeshTraffic holds mesh-wide defaults of the sidecars' HTTP traffic.
type MeshTraffic struct {
	// StreamIdleTimeout is how long an HTTP request or stream (a WebSocket,
	// a gRPC stream, server-sent events) may go without a byte either way
	// before the sidecars reset it. Unset means 1h (Envoy's own default of 5m
	// cuts quiet long-lived streams); "0s" turns the timeout off.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) <= duration('720h')",message="streamIdleTimeout must be at most 720h"
	// +optional
	StreamIdleTimeout *metav1.Duration `json:"streamIdleTimeout,omitempty"`
}

// MeshMTLS is the mesh-wide mTLS default.
type MeshMTLS struct {
	// Mode is STRICT (only mTLS is accepted) or PERMISSIVE (mTLS and plaintext).
	// +kubebuilder:default=PERMISSIVE
	// +optional
	Mode MTLSMode `json:"mode,omitempty"`
}

// Certificates configures workload certificate issuance.
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider != 'CertManager' || has(self.issuerRef)",message="issuerRef is required when provider is CertManager",fieldPath=".issuerRef"
// +kubebuilder:validation:XValidation:rule="(has(self.provider) && self.provider == 'CertManager') || !has(self.issuerRef)",message="issuerRef may only be set when provider is CertManager",fieldPath=".issuerRef"
type Certificates struct {
	// Provider is BuiltIn (a CA managed by Capstan) or CertManager (an issuer named by issuerRef).
	// +kubebuilder:default=BuiltIn
	// +optional
	Provider CertificateProvider `json:"provider,omitempty"`

	// IssuerRef names the cert-manager Issuer or ClusterIssuer that signs workload certificates.
	// +optional
	IssuerRef *IssuerReference `json:"issuerRef,omitempty"`

	// WorkloadCertTTL is the lifetime of a workload certificate, between 10m and 720h.
	// +kubebuilder:default="24h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('10m') && duration(self) <= duration('720h')",message="workloadCertTTL must be between 10m and 720h"
	// +optional
	WorkloadCertTTL metav1.Duration `json:"workloadCertTTL,omitzero"`

	// RotationFraction is the fraction of a certificate's life after which it is renewed.
	// +kubebuilder:default=0.5
	// +kubebuilder:validation:Minimum=0.3
	// +kubebuilder:validation:Maximum=0.8
	// +optional
	RotationFraction float64 `json:"rotationFraction,omitempty"`
}

// IssuerReference names a cert-manager issuer.
type IssuerReference struct {
	// Name of the issuer.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Kind is Issuer (in the operator's namespace) or ClusterIssuer.
	// +kubebuilder:default=Issuer
	// +kubebuilder:validation:Enum=Issuer;ClusterIssuer
	// +optional
	Kind string `json:"kind,omitempty"`

	// Group of the issuer.
	// +kubebuilder:default="cert-manager.io"
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Group string `json:"group,omitempty"`
}

// ProxyConfig configures the injected Envoy.
type ProxyConfig struct {
	// Image is the Envoy image; the stock envoyproxy/envoy image at a pinned tag by default.
	// +kubebuilder:default="envoyproxy/envoy:v1.40.0"
	// +kubebuilder:validation:MinLength=1
	// +optional
	Image string `json:"image,omitempty"`

	// Resources of the sidecar container.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// Concurrency is the number of Envoy worker threads; 0 derives it from the CPU limit.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=64
	// +optional
	Concurrency int32 `json:"concurrency,omitempty"`

	// LogLevel of Envoy.
	// +kubebuilder:default=warning
	// +kubebuilder:validation:Enum=trace;debug;info;warning;error;critical;off
	// +optional
	LogLevel string `json:"logLevel,omitempty"`
}

// Injection configures sidecar injection.
type Injection struct {
	// NativeSidecar injects Envoy as a native sidecar (an init container with restartPolicy Always).
	// +kubebuilder:default=true
	// +optional
	NativeSidecar *bool `json:"nativeSidecar,omitempty"`

	// RestartUninjected lets Capstan restart workloads whose pods run without a sidecar
	// in a namespace where injection is enabled.
	// +kubebuilder:default=false
	// +optional
	RestartUninjected bool `json:"restartUninjected,omitempty"`
}

// AccessLogFormat is the format of sidecar access logs.
// +kubebuilder:validation:Enum=Text;JSON
type AccessLogFormat string

// Access log formats.
const (
	AccessLogText AccessLogFormat = "Text"
	AccessLogJSON AccessLogFormat = "JSON"
)

// Telemetry configures access logs and tracing.
type Telemetry struct {
	// AccessLog configures sidecar access logs.
	// +kubebuilder:default={}
	// +optional
	AccessLog AccessLog `json:"accessLog,omitempty"`

	// Tracing configures trace sampling.
	// +kubebuilder:default={}
	// +optional
	Tracing Tracing `json:"tracing,omitempty"`
}

// AccessLog configures sidecar access logs.
type AccessLog struct {
	// Enabled turns access logs on.
	// +kubebuilder:default=false
	// +optional
	Enabled bool `json:"enabled,omitempty"`

	// Format is Text or JSON.
	// +kubebuilder:default=Text
	// +optional
	Format AccessLogFormat `json:"format,omitempty"`
}

// Tracing configures trace sampling.
type Tracing struct {
	// SamplingPercent is the share of requests traced, 0 to 100.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	SamplingPercent float64 `json:"samplingPercent,omitempty"`

	// Collector is the OpenTelemetry collector that sidecars export spans
	// to over OTLP/gRPC (plaintext), as host:port, for example
	// otel-collector.observability.svc.cluster.local:4317. Empty: spans are
	// not exported, though sidecars still generate x-request-id and
	// propagate trace headers.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Collector string `json:"collector,omitempty"`
}

// MeshStatus is the observed state of the mesh.
type MeshStatus struct {
	// Conditions: Accepted, Ready, IssuerReady.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// UninjectedPods counts the running pods in namespaces labelled
	// capstan.dev/inject=enabled that have no sidecar (they predate the label
	// or the injector).
	// +optional
	UninjectedPods int32 `json:"uninjectedPods,omitempty"`

	// UninjectedSample lists the first uninjected pods, as "namespace/name", sorted.
	// +kubebuilder:validation:MaxItems=5
	// +listType=atomic
	// +optional
	UninjectedSample []string `json:"uninjectedSample,omitempty"`

	// OutdatedPods counts the running pods whose sidecar was injected by
	// another version of Capstan.
	// +optional
	OutdatedPods int32 `json:"outdatedPods,omitempty"`

	// OptedOutPods counts the running pods in namespaces labelled
	// capstan.dev/inject=enabled that opted out of traffic capture (and so of
	// mTLS and mesh policy): the pod label capstan.dev/inject=false, a
	// capstan.dev/exclude-* annotation that excludes all inbound or all
	// outbound traffic, or a container running as the proxy's UID or GID.
	// Each such pod also gets a Warning Event (reason PodOptedOut) saying how.
	// +optional
	OptedOutPods int32 `json:"optedOutPods,omitempty"`

	// OptedOutSample lists the first opted-out pods, as "namespace/name", sorted.
	// +kubebuilder:validation:MaxItems=5
	// +listType=atomic
	// +optional
	OptedOutSample []string `json:"optedOutSample,omitempty"`

	// ConnectedProxies counts the proxies with an open xDS stream, by kind.
	// +optional
	ConnectedProxies *ConnectedProxies `json:"connectedProxies,omitempty"`

	// EarliestCertificateExpiry is when the first of the workload
	// certificates the operator currently serves expires (they are renewed
	// well before; a date in the past means renewal is failing, see the
	// IssuerReady condition, which also says whether the CA is ready).
	// +optional
	EarliestCertificateExpiry *metav1.Time `json:"earliestCertificateExpiry,omitempty"`
}

// ConnectedProxies counts connected proxies by kind.
type ConnectedProxies struct {
	// Sidecars are Envoy sidecars.
	Sidecars int32 `json:"sidecars"`
	// GRPC are proxyless gRPC clients.
	GRPC int32 `json:"grpc"`
}

// Mesh is the mesh-wide configuration. Only one, named "default", is accepted.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=capstan
// +kubebuilder:validation:XValidation:rule="self.metadata.name == 'default'",message="metadata.name: the Mesh must be named 'default'"
// +kubebuilder:printcolumn:name="Trust-Domain",type=string,JSONPath=`.spec.trustDomain`
// +kubebuilder:printcolumn:name="mTLS",type=string,JSONPath=`.spec.mtls.mode`
// +kubebuilder:printcolumn:name="CA",type=string,JSONPath=`.spec.certificates.provider`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Mesh struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:default={}
	// +optional
	Spec   MeshSpec   `json:"spec,omitempty"`
	Status MeshStatus `json:"status,omitempty"`
}

// MeshList is a list of Mesh.
// +kubebuilder:object:root=true
type MeshList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Mesh `json:"items"`
}

func init() {
	register(&Mesh{}, &MeshList{})
}
