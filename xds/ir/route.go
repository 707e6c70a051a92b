package ir

// HTTPRoute is one rule of a host, in match order.
type HTTPRoute struct {
	// Name is "<namespace>/<meshroute>/<rule name or index>", unique within the host.
	Name string `json:"name"`
	// Source is the MeshRoute the rule came from.
	Source ObjectRef `json:"source"`
	// Matches are alternatives; empty matches every request.
	Matches []*Match `json:"matches,omitempty"`
	// Destinations are weighted; weights sum to 100 when there are two or more.
	Destinations []*Destination `json:"destinations,omitempty"`
	Timeout      *Duration      `json:"timeout,omitempty"`
	Retries      *Retries       `json:"retries,omitempty"`
	Fault        *Fault         `json:"fault,omitempty"`
	Mirror       *Mirror        `json:"mirror,omitempty"`
	Rewrite      *Rewrite       `json:"rewrite,omitempty"`
	Redirect     *Redirect      `json:"redirect,omitempty"`
	// RequestHeaders and ResponseHeaders are header edits.
	RequestHeaders  *HeaderOps `json:"requestHeaders,omitempty"`
	ResponseHeaders *HeaderOps `json:"responseHeaders,omitempty"`
}

// MatchKind says how a string is compared.
type MatchKind string

// Match kinds.
const (
	MatchExact   MatchKind = "Exact"
	MatchPrefix  MatchKind = "Prefix"
	MatchRegex   MatchKind = "RegularExpression"
	MatchPresent MatchKind = "Present"
)

// Match is a set of conditions that must all hold.
type Match struct {
	Path        *StringMatch  `json:"path,omitempty"`
	Headers     []*KeyedMatch `json:"headers,omitempty"`
	QueryParams []*KeyedMatch `json:"queryParams,omitempty"`
	Method      string        `json:"method,omitempty"`
}

// StringMatch compares one value.
type StringMatch struct {
	Kind  MatchKind `json:"kind"`
	Value string    `json:"value,omitempty"`
}

// KeyedMatch compares a named header or query parameter.
type KeyedMatch struct {
	Name   string    `json:"name"`
	Kind   MatchKind `json:"kind"`
	Value  string    `json:"value,omitempty"`
	Invert bool      `json:"invert,omitempty"`
}

// Destination is a weighted upstream cluster.
type Destination struct {
	// Service is the destination's FQDN.
	Service string `json:"service"`
	Port    uint32 `json:"port"`
	Subset  string `json:"subset,omitempty"`
	Weight  uint32 `json:"weight"`
}

// ClusterName is the outbound cluster the destination sends to.
func (d *Destination) ClusterName() string { return ClusterName(d.Service, d.Port, d.Subset) }

// Retries configures retries.
type Retries struct {
	Attempts      uint32    `json:"attempts"`
	PerTryTimeout *Duration `json:"perTryTimeout,omitempty"`
	// RetryOn conditions, sorted.
	RetryOn []string     `json:"retryOn"`
	Budget  *RetryBudget `json:"budget,omitempty"`
}

// RetryBudget caps concurrent retries.
type RetryBudget struct {
	Percent             uint32 `json:"percent"`
	MinRetryConcurrency uint32 `json:"minRetryConcurrency"`
}

// Fault injects delays or aborts.
type Fault struct {
	Delay *FaultDelay `json:"delay,omitempty"`
	Abort *FaultAbort `json:"abort,omitempty"`
}

// FaultDelay delays a share of requests.
type FaultDelay struct {
	Delay   Duration `json:"delay"`
	Percent uint32   `json:"percent"`
}

// FaultAbort aborts a share of requests.
type FaultAbort struct {
	HTTPStatus uint32 `json:"httpStatus"`
	Percent    uint32 `json:"percent"`
}

// Mirror copies a share of requests to another destination.
type Mirror struct {
	Destination Destination `json:"destination"`
	Percent     uint32      `json:"percent"`
}

// Rewrite changes the request before forwarding.
type Rewrite struct {
	// FullPath replaces the whole path.
	FullPath string `json:"fullPath,omitempty"`
	// Prefix replaces the matched path prefix.
	Prefix    string `json:"prefix,omitempty"`
	Authority string `json:"authority,omitempty"`
}

// Redirect answers with an HTTP redirect.
type Redirect struct {
	Path      string `json:"path,omitempty"`
	Authority string `json:"authority,omitempty"`
	Code      uint32 `json:"code"`
}

// HeaderOps edits headers. Set and Add are sorted by name.
type HeaderOps struct {
	Set    []*Header `json:"set,omitempty"`
	Add    []*Header `json:"add,omitempty"`
	Remove []string  `json:"remove,omitempty"`
}

// Header is a header name and value.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}
