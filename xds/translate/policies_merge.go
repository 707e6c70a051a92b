package translate

import (
	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// mergeTrafficPolicy is base overridden field by field by over. The load
// balancer is one choice and is replaced whole; connection pool and outlier
// detection fields that over sets win, the others come from base. Neither
// argument is modified; the result may share unchanged parts with them.
func mergeTrafficPolicy(base, over *meshv1alpha1.TrafficPolicy) *meshv1alpha1.TrafficPolicy {
	if base == nil {
		return over
	}
	if over == nil {
		return base
	}
	out := &meshv1alpha1.TrafficPolicy{
		LoadBalancer:     base.LoadBalancer,
		ConnectionPool:   mergeConnectionPool(base.ConnectionPool, over.ConnectionPool),
		OutlierDetection: mergeOutlierDetection(base.OutlierDetection, over.OutlierDetection),
	}
	if over.LoadBalancer != nil {
		out.LoadBalancer = over.LoadBalancer
	}
	return out
}

func mergeConnectionPool(base, over *meshv1alpha1.ConnectionPool) *meshv1alpha1.ConnectionPool {
	if base == nil {
		return over
	}
	if over == nil {
		return base
	}
	return &meshv1alpha1.ConnectionPool{
		TCP:  mergeTCPPool(base.TCP, over.TCP),
		HTTP: mergeHTTPPool(base.HTTP, over.HTTP),
	}
}

func mergeTCPPool(base, over *meshv1alpha1.TCPPool) *meshv1alpha1.TCPPool {
	if base == nil {
		return over
	}
	if over == nil {
		return base
	}
	out := *base
	setIfNonZero(&out.MaxConnections, over.MaxConnections)
	setIfNonNil(&out.ConnectTimeout, over.ConnectTimeout)
	return &out
}

func mergeHTTPPool(base, over *meshv1alpha1.HTTPPool) *meshv1alpha1.HTTPPool {
	if base == nil {
		return over
	}
	if over == nil {
		return base
	}
	out := *base
	setIfNonZero(&out.HTTP1MaxPendingRequests, over.HTTP1MaxPendingRequests)
	setIfNonZero(&out.HTTP2MaxRequests, over.HTTP2MaxRequests)
	setIfNonZero(&out.MaxRequestsPerConnection, over.MaxRequestsPerConnection)
	setIfNonZero(&out.MaxRetries, over.MaxRetries)
	setIfNonNil(&out.IdleTimeout, over.IdleTimeout)
	return &out
}

func mergeOutlierDetection(base, over *meshv1alpha1.OutlierDetection) *meshv1alpha1.OutlierDetection {
	if base == nil {
		return over
	}
	if over == nil {
		return base
	}
	out := *base
	setIfNonNil(&out.Consecutive5xxErrors, over.Consecutive5xxErrors)
	setIfNonNil(&out.ConsecutiveGatewayErrors, over.ConsecutiveGatewayErrors)
	setIfNonNil(&out.Interval, over.Interval)
	setIfNonNil(&out.BaseEjectionTime, over.BaseEjectionTime)
	setIfNonNil(&out.MaxEjectionPercent, over.MaxEjectionPercent)
	setIfNonNil(&out.MinHealthPercent, over.MinHealthPercent)
	setIfNonNil(&out.FailurePercentage, over.FailurePercentage)
	return &out
}

func setIfNonZero(dst *int32, v int32) {
	if v != 0 {
		*dst = v
	}
}

func setIfNonNil[T any](dst **T, v *T) {
	if v != nil {
		*dst = v
	}
}
