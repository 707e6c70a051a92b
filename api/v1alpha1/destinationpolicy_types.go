package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DestinationPolicySpec configures traffic to one host: subsets, load balancing,
// connection pool and outlier detection.
type DestinationPolicySpec struct {
	// Host is a Service name (in the policy's namespace) or FQDN.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Host string `json:"host"`

	// TrafficPolicy applies to every subset unless a subset overrides it.
	// +optional
	TrafficPolicy *TrafficPolicy `json:"trafficPolicy,omitempty"`

	// Subsets are named groups of the host's endpoints, chosen by pod labels.
	// +kubebuilder:validation:MaxItems=32
	// +listType=map
	// +listMapKey=name
	// +optional
	Subsets []Subset `json:"subsets,omitempty"`
}

// Subset is a named group of endpoints.
type Subset struct {
	// Name of the subset, used by MeshRoute destinations.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// Labels select the pods of the subset.
	// +kubebuilder:validation:MinProperties=1
	Labels map[string]string `json:"labels"`

	// TrafficPolicy overrides the policy's traffic policy for this subset.
	// +optional
	TrafficPolicy *TrafficPolicy `json:"trafficPolicy,omitempty"`
}

// TrafficPolicy configures how a client sends traffic to a host.
type TrafficPolicy struct {
	// LoadBalancer picks an endpoint for each request.
	// +optional
	LoadBalancer *LoadBalancer `json:"loadBalancer,omitempty"`

	// ConnectionPool limits connections and requests (circuit breaking).
	// +optional
	ConnectionPool *ConnectionPool `json:"connectionPool,omitempty"`

	// OutlierDetection ejects failing endpoints for a while.
	// +optional
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`
}

// SimpleLB is a load-balancing algorithm.
// +kubebuilder:validation:Enum=ROUND_ROBIN;LEAST_REQUEST;RANDOM
type SimpleLB string

// Load-balancing algorithms.
const (
	LBRoundRobin   SimpleLB = "ROUND_ROBIN"
	LBLeastRequest SimpleLB = "LEAST_REQUEST"
	LBRandom       SimpleLB = "RANDOM"
)

// LoadBalancer is either a simple algorithm or consistent hashing.
// +kubebuilder:validation:XValidation:rule="has(self.simple) != has(self.consistentHash)",message="exactly one of simple or consistentHash must be set"
type LoadBalancer struct {
	// Simple is ROUND_ROBIN, LEAST_REQUEST or RANDOM.
	// +optional
	Simple SimpleLB `json:"simple,omitempty"`

	// ConsistentHash keeps requests with the same key on the same endpoint.
	// +optional
	ConsistentHash *ConsistentHash `json:"consistentHash,omitempty"`
}

// ConsistentHash hashes one request attribute.
// +kubebuilder:validation:XValidation:rule="(has(self.httpHeaderName) ? 1 : 0) + (has(self.httpCookie) ? 1 : 0) + (has(self.useSourceIP) && self.useSourceIP ? 1 : 0) == 1",message="exactly one of httpHeaderName, httpCookie or useSourceIP must be set"
type ConsistentHash struct {
	// HTTPHeaderName hashes the value of this header.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	HTTPHeaderName string `json:"httpHeaderName,omitempty"`

	// HTTPCookie hashes this cookie, generating it when absent.
	// +optional
	HTTPCookie *HTTPCookie `json:"httpCookie,omitempty"`

	// UseSourceIP hashes the caller's IP address.
	// +optional
	UseSourceIP bool `json:"useSourceIP,omitempty"`
}

// HTTPCookie names a cookie for consistent hashing.
type HTTPCookie struct {
	// Name of the cookie.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Name string `json:"name"`

	// Path of the generated cookie.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Path string `json:"path,omitempty"`

	// TTL of the generated cookie.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +optional
	TTL *metav1.Duration `json:"ttl,omitempty"`
}

// ConnectionPool limits connections and requests to a host.
type ConnectionPool struct {
	// TCP limits.
	// +optional
	TCP *TCPPool `json:"tcp,omitempty"`

	// HTTP limits.
	// +optional
	HTTP *HTTPPool `json:"http,omitempty"`
}

// TCPPool limits TCP connections.
type TCPPool struct {
	// MaxConnections to the host from one proxy.
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxConnections int32 `json:"maxConnections,omitempty"`

	// ConnectTimeout for new connections.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +optional
	ConnectTimeout *metav1.Duration `json:"connectTimeout,omitempty"`
}

// HTTPPool limits HTTP requests.
type HTTPPool struct {
	// HTTP1MaxPendingRequests queued while waiting for a connection.
	// +kubebuilder:validation:Minimum=1
	// +optional
	HTTP1MaxPendingRequests int32 `json:"http1MaxPendingRequests,omitempty"`

	// HTTP2MaxRequests outstanding to the host.
	// +kubebuilder:validation:Minimum=1
	// +optional
	HTTP2MaxRequests int32 `json:"http2MaxRequests,omitempty"`

	// MaxRequestsPerConnection before a connection is closed; 0 means unlimited.
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxRequestsPerConnection int32 `json:"maxRequestsPerConnection,omitempty"`

	// MaxRetries outstanding to the host.
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxRetries int32 `json:"maxRetries,omitempty"`

	// IdleTimeout closes connections idle this long.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +optional
	IdleTimeout *metav1.Duration `json:"idleTimeout,omitempty"`
}

// OutlierDetection ejects failing endpoints. The defaults keep at least half of the pool.
type OutlierDetection struct {
	// Consecutive5xxErrors before an endpoint is ejected; 0 disables this check.
	// +kubebuilder:default=5
	// +kubebuilder:validation:Minimum=0
	// +optional
	Consecutive5xxErrors *int32 `json:"consecutive5xxErrors,omitempty"`

	// ConsecutiveGatewayErrors (502, 503, 504) before an endpoint is ejected; 0 disables this check.
	// +kubebuilder:validation:Minimum=0
	// +optional
	ConsecutiveGatewayErrors *int32 `json:"consecutiveGatewayErrors,omitempty"`

	// Interval between ejection sweeps.
	// +kubebuilder:default="10s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`

	// BaseEjectionTime, multiplied by the number of ejections so far.
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +optional
	BaseEjectionTime *metav1.Duration `json:"baseEjectionTime,omitempty"`

	// MaxEjectionPercent of the pool that may be ejected at once.
	// +kubebuilder:default=50
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	MaxEjectionPercent *int32 `json:"maxEjectionPercent,omitempty"`

	// MinHealthPercent: below this share of healthy endpoints, ejection stops and
	// traffic goes to every endpoint (panic mode).
	// +kubebuilder:default=50
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	MinHealthPercent *int32 `json:"minHealthPercent,omitempty"`

	// FailurePercentage ejects endpoints whose share of failed requests in an
	// interval reaches a threshold. Unlike the consecutive-error checks, proxyless
	// gRPC clients honour it.
	// +optional
	FailurePercentage *FailurePercentageEjection `json:"failurePercentage,omitempty"`
}

// FailurePercentageEjection ejects an endpoint when at least threshold percent
// of its requests in an interval failed. It applies only to endpoints that
// served at least requestVolume requests, and only when at least minimumHosts
// endpoints did.
type FailurePercentageEjection struct {
	// Threshold is the failure percentage at or above which an endpoint is ejected.
	// +kubebuilder:default=85
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	Threshold *int32 `json:"threshold,omitempty"`

	// MinimumHosts that must have served requestVolume requests for the check to run.
	// +kubebuilder:default=5
	// +kubebuilder:validation:Minimum=0
	// +optional
	MinimumHosts *int32 `json:"minimumHosts,omitempty"`

	// RequestVolume an endpoint must have served in the interval to be checked.
	// +kubebuilder:default=50
	// +kubebuilder:validation:Minimum=0
	// +optional
	RequestVolume *int32 `json:"requestVolume,omitempty"`
}

// DestinationPolicyStatus is the observed state of a DestinationPolicy.
type DestinationPolicyStatus struct {
	// Conditions: Accepted, ResolvedRefs, Programmed.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Proxies counts the proxies whose config carries this object and those
	// of them that acknowledged its current generation.
	// +optional
	Proxies *ProxyCounts `json:"proxies,omitempty"`
}

// DestinationPolicy configures traffic to a host after routing.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dp,categories=capstan
// +kubebuilder:printcolumn:name="Host",type=string,JSONPath=`.spec.host`
// +kubebuilder:printcolumn:name="Subsets",type=string,JSONPath=`.spec.subsets[*].name`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Programmed",type=string,JSONPath=`.status.conditions[?(@.type=="Programmed")].status`
// +kubebuilder:printcolumn:name="Proxies",type=string,JSONPath=`.status.proxies.summary`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type DestinationPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   DestinationPolicySpec   `json:"spec"`
	Status DestinationPolicyStatus `json:"status,omitempty"`
}

// DestinationPolicyList is a list of DestinationPolicy.
// +kubebuilder:object:root=true
type DestinationPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DestinationPolicy `json:"items"`
}

func init() {
	register(&DestinationPolicy{}, &DestinationPolicyList{})
}
