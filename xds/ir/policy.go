package ir

// TrafficPolicy is how a client sends traffic to a service or subset.
type TrafficPolicy struct {
	LoadBalancer     *LoadBalancer     `json:"loadBalancer,omitempty"`
	ConnectionPool   *ConnectionPool   `json:"connectionPool,omitempty"`
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`
}

// LBAlgorithm is a load-balancing algorithm.
type LBAlgorithm string

// Load-balancing algorithms.
const (
	LBRoundRobin   LBAlgorithm = "RoundRobin"
	LBLeastRequest LBAlgorithm = "LeastRequest"
	LBRandom       LBAlgorithm = "Random"
	LBRingHash     LBAlgorithm = "RingHash"
)

// LoadBalancer picks an endpoint per request. For RingHash exactly one hash key is set.
type LoadBalancer struct {
	Algorithm    LBAlgorithm `json:"algorithm"`
	HashHeader   string      `json:"hashHeader,omitempty"`
	HashCookie   *HashCookie `json:"hashCookie,omitempty"`
	HashSourceIP bool        `json:"hashSourceIP,omitempty"`
}

// HashCookie is a cookie hashed for consistent hashing.
type HashCookie struct {
	Name string    `json:"name"`
	Path string    `json:"path,omitempty"`
	TTL  *Duration `json:"ttl,omitempty"`
}

// ConnectionPool holds circuit-breaking limits; zero means Envoy's default.
type ConnectionPool struct {
	MaxConnections           uint32    `json:"maxConnections,omitempty"`
	ConnectTimeout           *Duration `json:"connectTimeout,omitempty"`
	MaxPendingRequests       uint32    `json:"maxPendingRequests,omitempty"`
	MaxRequests              uint32    `json:"maxRequests,omitempty"`
	MaxRequestsPerConnection uint32    `json:"maxRequestsPerConnection,omitempty"`
	MaxRetries               uint32    `json:"maxRetries,omitempty"`
	IdleTimeout              *Duration `json:"idleTimeout,omitempty"`
}

// OutlierDetection ejects failing endpoints. Nil counters disable that check.
type OutlierDetection struct {
	Consecutive5xxErrors     *uint32  `json:"consecutive5xxErrors,omitempty"`
	ConsecutiveGatewayErrors *uint32  `json:"consecutiveGatewayErrors,omitempty"`
	Interval                 Duration `json:"interval"`
	BaseEjectionTime         Duration `json:"baseEjectionTime"`
	MaxEjectionPercent       uint32   `json:"maxEjectionPercent"`
	// MinHealthPercent becomes the cluster's panic threshold.
	MinHealthPercent uint32 `json:"minHealthPercent"`
	// FailurePercentage ejects endpoints whose share of failed requests in an
	// interval reaches a threshold; nil disables that check.
	FailurePercentage *FailurePercentage `json:"failurePercentage,omitempty"`
}

// FailurePercentage is failure-percentage ejection: an endpoint that served
// at least RequestVolume requests in an interval, of which Threshold percent
// or more failed, is ejected, when at least MinimumHosts endpoints qualify.
type FailurePercentage struct {
	Threshold     uint32 `json:"threshold"`
	MinimumHosts  uint32 `json:"minimumHosts"`
	RequestVolume uint32 `json:"requestVolume"`
}
