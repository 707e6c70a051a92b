package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MeshRouteSpec routes HTTP traffic addressed to one or more hosts.
type MeshRouteSpec struct {
	// Hosts are the Service names (resolved in the route's namespace) or FQDNs this route applies to.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +listType=set
	Hosts []string `json:"hosts"`

	// HTTP holds the rules, tried in order; the first whose match fits handles the request.
	// +kubebuilder:validation:MaxItems=32
	// +optional
	HTTP []HTTPRule `json:"http,omitempty"`
}

// HTTPRule matches requests and says what to do with them.
// +kubebuilder:validation:XValidation:rule="!(has(self.redirect) && has(self.route))",message="redirect and route are mutually exclusive",fieldPath=".redirect"
// +kubebuilder:validation:XValidation:rule="has(self.redirect) || has(self.route)",message="a rule needs a route or a redirect",fieldPath=".route"
// +kubebuilder:validation:XValidation:rule="!has(self.route) || size(self.route) < 2 || self.route.map(d, has(d.weight) ? d.weight : 0).sum() == 100",message="weights of the destinations must sum to 100",fieldPath=".route"
// +kubebuilder:validation:XValidation:rule="!has(self.redirect) || (!has(self.retries) && !has(self.mirror) && !has(self.rewrite) && !has(self.timeout))",message="a redirect rule cannot have retries, mirror, rewrite or timeout",fieldPath=".redirect"
type HTTPRule struct {
	// Name of the rule, shown in statuses and stats.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Name string `json:"name,omitempty"`

	// Match lists alternative conditions (any one may fit); empty matches every request.
	// +kubebuilder:validation:MaxItems=8
	// +optional
	Match []HTTPMatch `json:"match,omitempty"`

	// Route lists the weighted destinations of the matched requests.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +optional
	Route []Destination `json:"route,omitempty"`

	// Timeout of the whole request, retries included.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// Retries of failed requests.
	// +optional
	Retries *Retries `json:"retries,omitempty"`

	// Fault injects delays or aborts.
	// +optional
	Fault *Fault `json:"fault,omitempty"`

	// Mirror sends a copy of a share of the requests to another host.
	// +optional
	Mirror *Mirror `json:"mirror,omitempty"`

	// Rewrite changes the path or authority before forwarding.
	// +optional
	Rewrite *Rewrite `json:"rewrite,omitempty"`

	// Redirect answers with an HTTP redirect instead of forwarding.
	// +optional
	Redirect *Redirect `json:"redirect,omitempty"`

	// Headers edits request and response headers.
	// +optional
	Headers *HeaderEdits `json:"headers,omitempty"`
}

// MatchType says how a value is compared.
// +kubebuilder:validation:Enum=Exact;Prefix;RegularExpression;Present
type MatchType string

// Match types.
const (
	MatchExact             MatchType = "Exact"
	MatchPrefix            MatchType = "Prefix"
	MatchRegularExpression MatchType = "RegularExpression"
	MatchPresent           MatchType = "Present"
)

// HTTPMatch is one set of conditions, all of which must hold.
type HTTPMatch struct {
	// Path matches the request path.
	// +optional
	Path *PathMatch `json:"path,omitempty"`

	// Headers match request headers.
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Headers []HeaderMatch `json:"headers,omitempty"`

	// QueryParams match query parameters.
	// +kubebuilder:validation:MaxItems=16
	// +optional
	QueryParams []QueryParamMatch `json:"queryParams,omitempty"`

	// Method matches the request method.
	// +kubebuilder:validation:Enum=GET;HEAD;POST;PUT;DELETE;CONNECT;OPTIONS;TRACE;PATCH
	// +optional
	Method string `json:"method,omitempty"`
}

// PathMatch matches the request path.
// +kubebuilder:validation:XValidation:rule="self.type == 'RegularExpression' || self.value.startsWith('/')",message="an Exact or Prefix path must start with '/'",fieldPath=".value"
// +kubebuilder:validation:XValidation:rule="self.type != 'RegularExpression' || type('x'.matches(self.value)) == bool",message="value must be a valid RE2 regular expression",fieldPath=".value"
type PathMatch struct {
	// Type is Exact, Prefix or RegularExpression.
	// +kubebuilder:default=Prefix
	// +kubebuilder:validation:Enum=Exact;Prefix;RegularExpression
	// +optional
	Type MatchType `json:"type,omitempty"`

	// Value to compare the path with.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Value string `json:"value"`
}

// HeaderMatch matches one request header.
// +kubebuilder:validation:XValidation:rule="self.type == 'Present' || has(self.value)",message="value is required unless type is Present",fieldPath=".value"
// +kubebuilder:validation:XValidation:rule="self.type != 'Present' || !has(self.value)",message="value must be empty when type is Present",fieldPath=".value"
// +kubebuilder:validation:XValidation:rule="self.type != 'RegularExpression' || type('x'.matches(self.value)) == bool",message="value must be a valid RE2 regular expression",fieldPath=".value"
type HeaderMatch struct {
	// Name of the header, lower case.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^:?[a-z0-9!#$%&'*+\-.^_|~]+$`
	Name string `json:"name"`

	// Type is Exact, Prefix, RegularExpression or Present.
	// +kubebuilder:default=Exact
	// +optional
	Type MatchType `json:"type,omitempty"`

	// Value to compare with; not used by Present.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Value string `json:"value,omitempty"`

	// Invert makes the match fit requests that do not match.
	// +optional
	Invert bool `json:"invert,omitempty"`
}

// QueryParamMatch matches one query parameter.
// +kubebuilder:validation:XValidation:rule="self.type == 'Present' || has(self.value)",message="value is required unless type is Present",fieldPath=".value"
// +kubebuilder:validation:XValidation:rule="self.type != 'RegularExpression' || type('x'.matches(self.value)) == bool",message="value must be a valid RE2 regular expression",fieldPath=".value"
type QueryParamMatch struct {
	// Name of the query parameter.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Name string `json:"name"`

	// Type is Exact, RegularExpression or Present.
	// +kubebuilder:default=Exact
	// +kubebuilder:validation:Enum=Exact;RegularExpression;Present
	// +optional
	Type MatchType `json:"type,omitempty"`

	// Value to compare with; not used by Present.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Value string `json:"value,omitempty"`
}

// Destination is a weighted upstream: a host, optionally a subset and a port.
type Destination struct {
	// Host is a Service name (in the route's namespace) or FQDN.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Host string `json:"host"`

	// Subset names a subset defined by the host's DestinationPolicy.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Subset string `json:"subset,omitempty"`

	// Port of the host; required when the Service has more than one port.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port int32 `json:"port,omitempty"`

	// Weight in percent; the weights of a rule's destinations sum to 100 when there are two or more.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	Weight *int32 `json:"weight,omitempty"`
}

// RetryOn is a condition under which a request is retried.
// +kubebuilder:validation:Enum="5xx";gateway-error;reset;connect-failure;retriable-4xx;refused-stream;cancelled;deadline-exceeded;internal;resource-exhausted;unavailable
type RetryOn string

// Retries configures retries.
type Retries struct {
	// Attempts is the number of retries after the first try.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	Attempts int32 `json:"attempts"`

	// PerTryTimeout bounds each try.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +optional
	PerTryTimeout *metav1.Duration `json:"perTryTimeout,omitempty"`

	// RetryOn lists the conditions that trigger a retry; default 5xx, reset, connect-failure, refused-stream.
	// +kubebuilder:validation:MaxItems=11
	// +listType=set
	// +optional
	RetryOn []RetryOn `json:"retryOn,omitempty"`

	// Budget caps retries as a share of active requests, so retries cannot amplify an outage.
	// +optional
	Budget *RetryBudget `json:"budget,omitempty"`
}

// RetryBudget caps concurrent retries.
type RetryBudget struct {
	// Percent of active requests that may be retries.
	// +kubebuilder:default=20
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	Percent int32 `json:"percent,omitempty"`

	// MinRetryConcurrency is the number of concurrent retries always allowed.
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=0
	// +optional
	MinRetryConcurrency int32 `json:"minRetryConcurrency,omitempty"`
}

// Fault injects faults into a share of requests.
// +kubebuilder:validation:XValidation:rule="has(self.delay) || has(self.abort)",message="a fault needs a delay or an abort"
type Fault struct {
	// Delay holds requests before forwarding them.
	// +optional
	Delay *FaultDelay `json:"delay,omitempty"`

	// Abort answers requests with an error status.
	// +optional
	Abort *FaultAbort `json:"abort,omitempty"`
}

// FaultDelay delays a share of requests.
type FaultDelay struct {
	// FixedDelay added to each affected request.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	FixedDelay metav1.Duration `json:"fixedDelay"`

	// Percent of requests delayed.
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	Percent int32 `json:"percent,omitempty"`
}

// FaultAbort aborts a share of requests.
type FaultAbort struct {
	// HTTPStatus returned to the caller.
	// +kubebuilder:validation:Minimum=200
	// +kubebuilder:validation:Maximum=599
	HTTPStatus int32 `json:"httpStatus"`

	// Percent of requests aborted.
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	Percent int32 `json:"percent,omitempty"`
}

// Mirror copies a share of requests to another host; responses are discarded.
type Mirror struct {
	// Host receiving the copies.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Host string `json:"host"`

	// Subset of the host.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Subset string `json:"subset,omitempty"`

	// Percent of requests mirrored.
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	Percent int32 `json:"percent,omitempty"`
}

// Rewrite changes the request before forwarding.
// +kubebuilder:validation:XValidation:rule="!(has(self.uri) && has(self.prefix))",message="uri and prefix are mutually exclusive",fieldPath=".prefix"
// +kubebuilder:validation:XValidation:rule="has(self.uri) || has(self.prefix) || has(self.authority)",message="a rewrite needs uri, prefix or authority"
type Rewrite struct {
	// URI replaces the whole path.
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/`
	// +optional
	URI string `json:"uri,omitempty"`

	// Prefix replaces the matched path prefix (the rule's match must be a Prefix path match).
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/`
	// +optional
	Prefix string `json:"prefix,omitempty"`

	// Authority replaces the Host/:authority header.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Authority string `json:"authority,omitempty"`
}

// Redirect answers with an HTTP redirect.
// +kubebuilder:validation:XValidation:rule="has(self.uri) || has(self.authority)",message="a redirect needs uri or authority"
type Redirect struct {
	// URI replaces the path in the Location header.
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/`
	// +optional
	URI string `json:"uri,omitempty"`

	// Authority replaces the authority in the Location header.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Authority string `json:"authority,omitempty"`

	// Code is the redirect status.
	// +kubebuilder:default=301
	// +kubebuilder:validation:Enum=301;302;303;307;308
	// +optional
	Code int32 `json:"code,omitempty"`
}

// HeaderEdits edits request and response headers.
type HeaderEdits struct {
	// Request edits apply before forwarding.
	// +optional
	Request *HeaderOperations `json:"request,omitempty"`

	// Response edits apply before returning to the caller.
	// +optional
	Response *HeaderOperations `json:"response,omitempty"`
}

// HeaderOperations sets, adds and removes headers.
type HeaderOperations struct {
	// Set overwrites headers.
	// +kubebuilder:validation:MaxProperties=32
	// +optional
	Set map[string]string `json:"set,omitempty"`

	// Add appends headers.
	// +kubebuilder:validation:MaxProperties=32
	// +optional
	Add map[string]string `json:"add,omitempty"`

	// Remove deletes headers.
	// +kubebuilder:validation:MaxItems=32
	// +listType=set
	// +optional
	Remove []string `json:"remove,omitempty"`
}

// MeshRouteStatus is the observed state of a MeshRoute.
type MeshRouteStatus struct {
	// Conditions: Accepted, ResolvedRefs, Programmed.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Proxies counts the proxies whose config carries this route and those
	// of them that acknowledged its current generation.
	// +optional
	Proxies *ProxyCounts `json:"proxies,omitempty"`
}

// MeshRoute routes HTTP traffic to one or more hosts.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=mr,categories=capstan
// +kubebuilder:printcolumn:name="Hosts",type=string,JSONPath=`.spec.hosts`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Programmed",type=string,JSONPath=`.status.conditions[?(@.type=="Programmed")].status`
// +kubebuilder:printcolumn:name="Proxies",type=string,JSONPath=`.status.proxies.summary`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MeshRoute struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   MeshRouteSpec   `json:"spec"`
	Status MeshRouteStatus `json:"status,omitempty"`
}

// MeshRouteList is a list of MeshRoute.
// +kubebuilder:object:root=true
type MeshRouteList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MeshRoute `json:"items"`
}

func init() {
	register(&MeshRoute{}, &MeshRouteList{})
}
