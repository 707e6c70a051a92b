package runner

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/xds/translate"
)

// fuzzBytes hands out the fuzz input one byte at a time; once it is exhausted
// every choice is 0, so any input, even empty, builds valid Inputs.
type fuzzBytes struct{ in []byte }

func (z *fuzzBytes) next() byte {
	if len(z.in) == 0 {
		return 0
	}
	b := z.in[0]
	z.in = z.in[1:]
	return b
}

// intn returns the next byte modulo n (n ≥ 1).
func (z *fuzzBytes) intn(n int) int { return int(z.next()) % n }

// between returns a value in [lo, hi].
func (z *fuzzBytes) between(lo, hi int) int { return lo + z.intn(hi-lo+1) }

// chance is true one time in n.
func (z *fuzzBytes) chance(n int) bool { return z.intn(n) == 0 }

// fuzzPick returns one of options.
func fuzzPick[T any](z *fuzzBytes, options ...T) T { return options[z.intn(len(options))] }

// fuzzSubset returns a duplicate-free subset of options, in their order.
func fuzzSubset[T any](z *fuzzBytes, options ...T) []T {
	var out []T
	for _, o := range options {
		if z.chance(3) {
			out = append(out, o)
		}
	}
	return out
}

// str returns a short valid UTF-8 string from the fuzz bytes over alphabet, at most max runes.
func (z *fuzzBytes) str(alphabet string, max int) string {
	runes := []rune(alphabet)
	n := z.intn(max + 1)
	var b strings.Builder
	for range n {
		b.WriteRune(runes[z.intn(len(runes))])
	}
	return b.String()
}

// The fixed vocabulary the builder draws from: few enough names that hosts,
// subsets, labels and ports often meet.
var (
	fuzzNamespaces   = []string{"default", "prod", "shop"}
	fuzzServiceNames = []string{"reviews", "ratings", "web", "db", "api"}
	fuzzSubsetNames  = []string{"v1", "v2", "canary"}
	fuzzPortNames    = []string{"http", "http-web", "http2", "grpc", "grpc-web", "tcp", "tcp-db", "mongo", "https", "http-alt"}
	fuzzAppProtocols = []string{"http", "http2", "grpc", "tcp", "https", "kubernetes.io/h2c", "kubernetes.io/ws", "grpc-web", "example.com/custom"}
	fuzzServicePorts = []int32{80, 8080, 9080, 9090, 5432, 443}
	fuzzContainer    = []corev1.ContainerPort{
		{Name: "web", ContainerPort: 8080}, {Name: "rpc", ContainerPort: 9091}, {Name: "metrics", ContainerPort: 9102},
		{Name: "admin", ContainerPort: 9080}, {ContainerPort: 5432}, {Name: "alt", ContainerPort: 15006},
	}
	fuzzRegexes = []string{
		".*", "^/api/v[0-9]+/.*$", "/users/[^/]+", "(?i)^/admin", "a|b", "[a-z]{1,3}", `\d+`, "^$", "x*",
		"^/(foo|bar)/(?P<id>[0-9]+)$", `^\Q/a.b\E$`, "[[:alpha:]]+", `\p{Greek}`, "(?s).", "é+",
	}
	fuzzDurations = []time.Duration{
		time.Millisecond, 250 * time.Millisecond, time.Second, 1500 * time.Millisecond, 10 * time.Second,
		5 * time.Minute, 24 * time.Hour, 0, time.Nanosecond, 2562047 * time.Hour,
	}
	fuzzStringAlphabet = "abcxyz019-_./:*?&=%~ \tÄ€\r\n\x00\"'\\"
)

// fuzzInputs builds translate.Inputs that admission would accept (every
// OpenAPI and CEL constraint of the CRDs holds, and the core objects are
// what the API server could hold), with user mistakes that admission cannot
// catch: unknown hosts, subsets and ports, conflicts, duplicate rule names,
// rewrites without a prefix match, aggressive outlier detection…
type fuzzInputs struct {
	z        *fuzzBytes
	in       *translate.Inputs
	services []*corev1.Service
	pods     map[string][]*corev1.Pod // by namespace/service name
	nextIP   int
}

func buildFuzzInputs(data []byte) *translate.Inputs {
	b := &fuzzInputs{z: &fuzzBytes{in: data}, in: &translate.Inputs{}, pods: map[string][]*corev1.Pod{}}
	b.build()
	return b.in
}

func (b *fuzzInputs) build() {
	z := b.z
	nss := fuzzNamespaces[:z.between(1, len(fuzzNamespaces))]
	for _, ns := range nss {
		n := corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
		if z.chance(2) {
			n.Labels = map[string]string{meshv1alpha1.LabelInject: meshv1alpha1.InjectEnabled}
		}
		if z.chance(3) {
			n.Annotations = map[string]string{meshv1alpha1.AnnotationDependencies: fuzzPick(z, "*", "prod/*", "nodot")}
		}
		b.in.Namespaces = append(b.in.Namespaces, n)
	}
	if !z.chance(3) {
		b.in.Mesh = &meshv1alpha1.Mesh{
			ObjectMeta: metav1.ObjectMeta{Name: meshv1alpha1.MeshName},
			Spec: meshv1alpha1.MeshSpec{
				TrustDomain: fuzzPick(z, "", "cluster.local", "example.org", "a.b-c.d"),
				MTLS:        meshv1alpha1.MeshMTLS{Mode: fuzzPick(z, meshv1alpha1.MTLSMode(""), meshv1alpha1.MTLSPermissive, meshv1alpha1.MTLSStrict)},
				Scoping: meshv1alpha1.MeshScoping{
					Mode:                    fuzzPick(z, meshv1alpha1.ScopingMode(""), meshv1alpha1.ScopingMeshWide),
					MaxClustersPerNamespace: fuzzPick(z, nil, new(int32(3))),
				},
			},
		}
	}
	for range z.between(1, 5) {
		b.service(fuzzPick(z, nss...))
	}
	for range z.intn(3) { // pods that back no service
		b.pod(fuzzPick(z, nss...), "client", nil)
	}
	for _, s := range b.services {
		b.endpointSlices(s)
	}
	if z.chance(4) { // a slice for a service that does not exist
		b.in.EndpointSlices = append(b.in.EndpointSlices, discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: "ghost-abcde", Namespace: nss[0], Labels: map[string]string{discoveryv1.LabelServiceName: "ghost"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.9.9.9"}}},
		})
	}
	for i := range z.intn(5) {
		b.destinationPolicy(fuzzPick(z, nss...), i)
	}
	for i := range z.intn(5) {
		b.meshRoute(fuzzPick(z, nss...), i)
	}
	for i := range z.intn(4) {
		b.peerAuthentication(fuzzPick(z, nss...), i)
	}
}

// meta gives an object a name, a namespace, a generation and one of a few
// creation times, so that conflicts are often decided by the tie-breaker.
func (b *fuzzInputs) meta(name, ns string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: name, Namespace: ns, Generation: int64(b.z.between(1, 4)),
		CreationTimestamp: metav1.NewTime(time.Date(2025, 1, 1+b.z.intn(3), 0, 0, 0, 0, time.UTC)),
	}
}

func (b *fuzzInputs) ip() string {
	b.nextIP++
	return fmt.Sprintf("10.1.%d.%d", b.nextIP/250, b.nextIP%250+1)
}

func (b *fuzzInputs) service(ns string) {
	z := b.z
	name := fuzzPick(z, fuzzServiceNames...)
	for _, s := range b.services {
		if s.Name == name && s.Namespace == ns {
			return // names are unique in a namespace
		}
	}
	idx := len(b.services) + 1
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	switch z.intn(8) {
	case 0:
		s.Spec.ClusterIP = corev1.ClusterIPNone
		s.Spec.ClusterIPs = []string{corev1.ClusterIPNone}
	case 1:
		s.Spec.Type = corev1.ServiceTypeExternalName
		s.Spec.ExternalName = "example.com"
	case 2:
		s.Spec.ClusterIP = fmt.Sprintf("10.96.0.%d", idx)
		s.Spec.ClusterIPs = []string{s.Spec.ClusterIP, fmt.Sprintf("fd00::%d", idx)}
	case 3:
		s.Spec.ClusterIP = fmt.Sprintf("fd00::%d", idx) // single-stack IPv6
		s.Spec.ClusterIPs = []string{s.Spec.ClusterIP}
	default:
		s.Spec.ClusterIP = fmt.Sprintf("10.96.0.%d", idx)
		s.Spec.ClusterIPs = []string{s.Spec.ClusterIP}
	}
	if !z.chance(6) {
		s.Spec.Selector = map[string]string{"app": name}
	}
	nPorts := z.between(1, 3)
	usedNames, usedPorts := map[string]bool{}, map[int32]bool{}
	for range nPorts {
		p := corev1.ServicePort{Protocol: corev1.ProtocolTCP, Port: fuzzPick(z, fuzzServicePorts...)}
		if z.chance(16) { // reserved for the sidecar, or the highest port
			p.Port = fuzzPick(z, int32(15001), 15006, 15021, 15090, 65535)
		}
		if usedPorts[p.Port] {
			continue
		}
		if nPorts > 1 || !z.chance(4) { // names are required with several ports
			p.Name = fuzzPick(z, fuzzPortNames...)
			if usedNames[p.Name] {
				continue
			}
		}
		if z.chance(10) {
			p.Protocol = corev1.ProtocolUDP
		}
		if z.chance(5) {
			ap := fuzzPick(z, fuzzAppProtocols...)
			p.AppProtocol = &ap
		}
		switch z.intn(4) {
		case 1:
			p.TargetPort = intstr.FromInt32(fuzzPick(z, int32(8080), 9091, 9102, 9080, 5432, 15006))
		case 2:
			p.TargetPort = intstr.FromString(fuzzPick(z, "web", "rpc", "metrics", "admin", "nosuch", "alt"))
		}
		usedNames[p.Name], usedPorts[p.Port] = true, true
		s.Spec.Ports = append(s.Spec.Ports, p)
	}
	b.services = append(b.services, s)
	b.in.Services = append(b.in.Services, *s)
	if s.Spec.Selector != nil {
		for range z.intn(4) {
			b.pods[ns+"/"+name] = append(b.pods[ns+"/"+name], b.pod(ns, name, s.Spec.Selector))
		}
	}
}

func (b *fuzzInputs) pod(ns, prefix string, selector map[string]string) *corev1.Pod {
	z := b.z
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name: fmt.Sprintf("%s-%d", prefix, b.nextIP+1), Namespace: ns,
		Labels: map[string]string{"version": fuzzPick(z, "v1", "v2")},
	}}
	for k, v := range selector {
		p.Labels[k] = v
	}
	if selector == nil {
		p.Labels["app"] = prefix
	}
	injected := !z.chance(4)
	if injected {
		p.Annotations = map[string]string{meshv1alpha1.AnnotationStatus: "injected"}
		if z.chance(3) {
			p.Annotations[meshv1alpha1.AnnotationDependencies] = fuzzPick(z, "*", "reviews.prod", "shop/*", "bad_entry, web.default.svc.cluster.local")
		}
	}
	p.Spec.ServiceAccountName = fuzzPick(z, "", "default", prefix)
	app := corev1.Container{Name: "app", Ports: fuzzSubset(z, fuzzContainer...)}
	p.Spec.Containers = []corev1.Container{app}
	if z.chance(4) {
		p.Spec.InitContainers = []corev1.Container{{Name: "init", Ports: fuzzSubset(z, fuzzContainer...)}}
	}
	if injected {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: meshv1alpha1.ProxyContainerName,
			Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 15090}, {Name: "nosuch", ContainerPort: 15021}}})
	}
	ip := b.ip() // taken even when unused, so names stay unique
	if !z.chance(6) {
		p.Status.PodIP = ip
		p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
		p.Status.Phase = fuzzPick(z, corev1.PodRunning, corev1.PodPending)
	}
	if z.chance(10) {
		t := metav1.NewTime(time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC))
		p.DeletionTimestamp = &t
	}
	b.in.Pods = append(b.in.Pods, *p)
	return p
}

// containerPort resolves a Service port's target on a pod as the endpoints
// controller does; false when a named port is not found.
func containerPort(p *corev1.Pod, sp corev1.ServicePort) (int32, bool) {
	switch {
	case sp.TargetPort.Type == intstr.String && sp.TargetPort.StrVal != "":
		for _, c := range slices.Concat(p.Spec.Containers, p.Spec.InitContainers) {
			for _, cp := range c.Ports {
				if cp.Name == sp.TargetPort.StrVal {
					return cp.ContainerPort, true
				}
			}
		}
		return 0, false
	case sp.TargetPort.IntVal != 0:
		return sp.TargetPort.IntVal, true
	default:
		return sp.Port, true
	}
}

func (b *fuzzInputs) endpointSlices(s *corev1.Service) {
	z := b.z
	if s.Spec.Type == corev1.ServiceTypeExternalName {
		return
	}
	pods := b.pods[s.Namespace+"/"+s.Name]
	for i := range z.intn(3) {
		es := discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: fmt.Sprintf("%s-%c", s.Name, 'a'+i), Namespace: s.Namespace, Labels: map[string]string{discoveryv1.LabelServiceName: s.Name}},
			AddressType: discoveryv1.AddressTypeIPv4,
		}
		if z.chance(12) {
			es.AddressType = discoveryv1.AddressTypeFQDN
		}
		if es.AddressType == discoveryv1.AddressTypeFQDN {
			es.Endpoints = []discoveryv1.Endpoint{{Addresses: []string{"db.example.com"}}}
			b.in.EndpointSlices = append(b.in.EndpointSlices, es)
			continue
		}
		var first *corev1.Pod
		for _, p := range pods {
			if p.Status.PodIP == "" || !z.chance(2) && len(pods) > 1 {
				continue
			}
			if first == nil {
				first = p
			}
			ep := discoveryv1.Endpoint{
				Addresses: []string{p.Status.PodIP},
				TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name},
			}
			switch z.intn(4) {
			case 1:
				ep.Conditions.Ready = new(true)
			case 2:
				ep.Conditions.Ready = new(false)
				ep.Conditions.Serving = new(z.chance(2))
				ep.Conditions.Terminating = new(z.chance(2))
			}
			if z.chance(3) {
				ep.Zone = new(fuzzPick(z, "zone-a", "zone-b"))
			}
			es.Endpoints = append(es.Endpoints, ep)
		}
		if z.chance(8) { // an address without a pod behind it
			es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{"10.2.0.1"}})
		}
		for _, sp := range s.Spec.Ports {
			port := sp.Port
			if first != nil {
				if cp, ok := containerPort(first, sp); ok {
					port = cp
				} else {
					continue
				}
			}
			proto := sp.Protocol
			es.Ports = append(es.Ports, discoveryv1.EndpointPort{Name: new(sp.Name), Port: new(port), Protocol: &proto, AppProtocol: sp.AppProtocol})
		}
		b.in.EndpointSlices = append(b.in.EndpointSlices, es)
	}
}

// host names a Service as a route or policy may: short, name.ns, name.ns.svc,
// the FQDN, or something that names no Service.
func (b *fuzzInputs) host() string {
	z := b.z
	if len(b.services) == 0 || z.chance(6) {
		return fuzzPick(z, "nosuch", "example.com", "reviews.nosuch", "a.b.c.d.e")
	}
	s := b.services[z.intn(len(b.services))]
	switch z.intn(4) {
	case 1:
		return s.Name + "." + s.Namespace
	case 2:
		return s.Name + "." + s.Namespace + ".svc"
	case 3:
		return s.Name + "." + s.Namespace + ".svc.cluster.local"
	}
	return s.Name
}

func (b *fuzzInputs) duration() *metav1.Duration {
	return &metav1.Duration{Duration: fuzzPick(b.z, fuzzDurations...)}
}

func (b *fuzzInputs) optDuration() *metav1.Duration {
	if b.z.chance(2) {
		return nil
	}
	return b.duration()
}

func (b *fuzzInputs) optInt32(lo, hi int) *int32 {
	if b.z.chance(2) {
		return nil
	}
	return new(int32(b.z.between(lo, hi)))
}

func (b *fuzzInputs) destinationPolicy(ns string, i int) {
	z := b.z
	dp := meshv1alpha1.DestinationPolicy{ObjectMeta: b.meta(fmt.Sprintf("dp-%d", i), ns)}
	dp.Spec.Host = b.host()
	dp.Spec.TrafficPolicy = b.trafficPolicy()
	for _, name := range fuzzSubset(z, fuzzSubsetNames...) {
		sub := meshv1alpha1.Subset{Name: name, Labels: map[string]string{"version": fuzzPick(z, "v1", "v2", "v3")}}
		if z.chance(4) {
			sub.Labels["app"] = fuzzPick(z, fuzzServiceNames...)
		}
		sub.TrafficPolicy = b.trafficPolicy()
		dp.Spec.Subsets = append(dp.Spec.Subsets, sub)
	}
	if z.chance(2) {
		dp.Annotations = map[string]string{meshv1alpha1.AnnotationAllowAggressiveEjection: "true"}
	}
	b.in.DestinationPolicies = append(b.in.DestinationPolicies, dp)
}

func (b *fuzzInputs) trafficPolicy() *meshv1alpha1.TrafficPolicy {
	z := b.z
	if z.chance(2) {
		return nil
	}
	tp := &meshv1alpha1.TrafficPolicy{}
	switch z.intn(6) {
	case 0:
		tp.LoadBalancer = &meshv1alpha1.LoadBalancer{Simple: fuzzPick(z, meshv1alpha1.LBRoundRobin, meshv1alpha1.LBLeastRequest, meshv1alpha1.LBRandom)}
	case 1:
		tp.LoadBalancer = &meshv1alpha1.LoadBalancer{ConsistentHash: &meshv1alpha1.ConsistentHash{HTTPHeaderName: fuzzPick(z, "x-user", "cookie", ":authority", "X-Mixed")}}
	case 2:
		tp.LoadBalancer = &meshv1alpha1.LoadBalancer{ConsistentHash: &meshv1alpha1.ConsistentHash{HTTPCookie: &meshv1alpha1.HTTPCookie{
			Name: fuzzPick(z, "session", "s", "a b"), Path: fuzzPick(z, "", "/", "/app"), TTL: b.optDuration(),
		}}}
	case 3:
		tp.LoadBalancer = &meshv1alpha1.LoadBalancer{ConsistentHash: &meshv1alpha1.ConsistentHash{UseSourceIP: true}}
	}
	if z.chance(2) {
		tp.ConnectionPool = &meshv1alpha1.ConnectionPool{}
		if z.chance(2) {
			tp.ConnectionPool.TCP = &meshv1alpha1.TCPPool{ConnectTimeout: b.optDuration()}
			if z.chance(2) {
				tp.ConnectionPool.TCP.MaxConnections = int32(fuzzPick(z, 1, 100, 1<<31-1))
			}
		}
		if z.chance(2) {
			tp.ConnectionPool.HTTP = &meshv1alpha1.HTTPPool{
				MaxRequestsPerConnection: int32(fuzzPick(z, 0, 1, 1000)),
				MaxRetries:               int32(fuzzPick(z, 0, 3, 1<<31-1)),
				IdleTimeout:              b.optDuration(),
			}
			if z.chance(2) {
				tp.ConnectionPool.HTTP.HTTP1MaxPendingRequests = int32(fuzzPick(z, 1, 1024))
			}
			if z.chance(2) {
				tp.ConnectionPool.HTTP.HTTP2MaxRequests = int32(fuzzPick(z, 1, 1<<31-1))
			}
		}
	}
	if z.chance(2) {
		tp.OutlierDetection = &meshv1alpha1.OutlierDetection{
			Consecutive5xxErrors:     b.optInt32(0, 10),
			ConsecutiveGatewayErrors: b.optInt32(0, 10),
			Interval:                 b.optDuration(),
			BaseEjectionTime:         b.optDuration(),
			MaxEjectionPercent:       b.optInt32(0, 100),
			MinHealthPercent:         b.optInt32(0, 100),
		}
	}
	return tp
}

// regex returns a regular expression that RE2 (Go's regexp, as CEL's matches) compiles.
func (b *fuzzInputs) regex() string {
	if b.z.chance(4) {
		if s := b.z.str("ab.*+?()[]|^$\\d{}1,-", 12); s != "" {
			if _, err := regexp.Compile(s); err == nil {
				return s
			}
		}
	}
	return fuzzPick(b.z, fuzzRegexes...)
}

// value is a match or header value: usually plain, sometimes any UTF-8; never
// empty, as an empty value is not sent (omitempty) and CEL requires one.
func (b *fuzzInputs) value() string {
	if b.z.chance(4) {
		if s := b.z.str(fuzzStringAlphabet, 8); s != "" {
			return s
		}
	}
	return fuzzPick(b.z, "v1", "jason", "a", "application/json", "x y")
}

func (b *fuzzInputs) path() string {
	if b.z.chance(4) {
		return "/" + b.z.str(fuzzStringAlphabet, 6)
	}
	return fuzzPick(b.z, "/", "/api", "/api/v1", "/reviews/", "/static/x.js")
}

func (b *fuzzInputs) match() meshv1alpha1.HTTPMatch {
	z := b.z
	var m meshv1alpha1.HTTPMatch
	if z.chance(2) {
		switch t := fuzzPick(z, meshv1alpha1.MatchType(""), meshv1alpha1.MatchExact, meshv1alpha1.MatchPrefix, meshv1alpha1.MatchRegularExpression); t {
		case meshv1alpha1.MatchRegularExpression:
			m.Path = &meshv1alpha1.PathMatch{Type: t, Value: b.regex()}
		default:
			m.Path = &meshv1alpha1.PathMatch{Type: t, Value: b.path()}
		}
	}
	for range z.intn(3) {
		h := meshv1alpha1.HeaderMatch{
			Name:   fuzzPick(z, "x-user", "end-user", ":authority", ":path", "content-type", "x-a.b~c", "host"),
			Type:   fuzzPick(z, meshv1alpha1.MatchType(""), meshv1alpha1.MatchExact, meshv1alpha1.MatchPrefix, meshv1alpha1.MatchRegularExpression, meshv1alpha1.MatchPresent),
			Invert: z.chance(4),
		}
		switch h.Type {
		case meshv1alpha1.MatchPresent:
		case meshv1alpha1.MatchRegularExpression:
			h.Value = b.regex()
		default:
			h.Value = b.value()
		}
		m.Headers = append(m.Headers, h)
	}
	for range z.intn(3) {
		q := meshv1alpha1.QueryParamMatch{
			Name: fuzzPick(z, "user", "debug", "a b", "ü"),
			Type: fuzzPick(z, meshv1alpha1.MatchType(""), meshv1alpha1.MatchExact, meshv1alpha1.MatchRegularExpression, meshv1alpha1.MatchPresent),
		}
		switch q.Type {
		case meshv1alpha1.MatchPresent:
			if z.chance(3) { // CEL does not forbid a value on a Present query match
				q.Value = b.value()
			}
		case meshv1alpha1.MatchRegularExpression:
			q.Value = b.regex()
		default:
			q.Value = b.value()
		}
		m.QueryParams = append(m.QueryParams, q)
	}
	if z.chance(3) {
		m.Method = fuzzPick(z, "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
	}
	return m
}

// weights returns n weights in [0, 100] that sum to 100 when n ≥ 2.
func (b *fuzzInputs) weights(n int) []*int32 {
	z := b.z
	out := make([]*int32, n)
	if n == 1 {
		if z.chance(2) {
			out[0] = new(int32(z.between(0, 100)))
		}
		return out
	}
	left := 100
	for i := range n - 1 {
		w := z.between(0, left)
		left -= w
		if w != 0 || !z.chance(2) { // an unset weight counts as 0
			out[i] = new(int32(w))
		}
	}
	out[n-1] = new(int32(left))
	return out
}

func (b *fuzzInputs) subsetName() string {
	return fuzzPick(b.z, "", "", "v1", "v2", "canary", "v3")
}

func (b *fuzzInputs) headerOps() *meshv1alpha1.HeaderOperations {
	z := b.z
	if z.chance(2) {
		return nil
	}
	// Header edit names have no pattern in the CRD: anything goes, but a
	// refused name leaves the whole rule out (api/validation), so refused
	// names are the exception and most rules keep their edits.
	names := func() string {
		switch {
		case z.chance(10):
			return z.str(fuzzStringAlphabet, 5)
		case z.chance(10):
			return fuzzPick(z, "Content-Type", ":path", "host")
		}
		return fuzzPick(z, "x-added", "x-user", "x-b3-traceid", "set-cookie")
	}
	ops := &meshv1alpha1.HeaderOperations{}
	for range z.intn(3) {
		if ops.Set == nil {
			ops.Set = map[string]string{}
		}
		ops.Set[names()] = b.value()
	}
	for range z.intn(3) {
		if ops.Add == nil {
			ops.Add = map[string]string{}
		}
		ops.Add[names()] = b.value()
	}
	for range z.intn(3) {
		if n := names(); !slices.Contains(ops.Remove, n) {
			ops.Remove = append(ops.Remove, n)
		}
	}
	return ops
}

func (b *fuzzInputs) rule() meshv1alpha1.HTTPRule {
	z := b.z
	var r meshv1alpha1.HTTPRule
	if z.chance(2) {
		r.Name = fuzzPick(z, "canary", "default", "r1", "a-b", "x")
	}
	for range z.intn(4) {
		r.Match = append(r.Match, b.match())
	}
	if z.chance(5) { // the redirect is exclusive with route, retries, mirror, rewrite and timeout
		r.Redirect = &meshv1alpha1.Redirect{Code: fuzzPick(z, int32(0), 301, 302, 303, 307, 308)}
		switch z.intn(3) {
		case 0:
			r.Redirect.URI = b.path()
		case 1:
			r.Redirect.Authority = fuzzPick(z, "example.com", "a:8080", "", "x y")
		default:
			r.Redirect.URI, r.Redirect.Authority = b.path(), fuzzPick(z, "example.com", "[::1]:80")
		}
		if r.Redirect.URI == "" && r.Redirect.Authority == "" {
			r.Redirect.Authority = "example.com"
		}
	} else {
		n := z.between(1, 4)
		ws := b.weights(n)
		for i := range n {
			d := meshv1alpha1.Destination{Host: b.host(), Subset: b.subsetName(), Weight: ws[i]}
			if z.chance(2) {
				d.Port = fuzzPick(z, fuzzServicePorts...)
				if z.chance(8) {
					d.Port = int32(z.between(1, 255))
				}
			}
			r.Route = append(r.Route, d)
		}
		if z.chance(3) {
			r.Timeout = b.duration()
		}
		if z.chance(3) {
			r.Retries = &meshv1alpha1.Retries{
				Attempts:      int32(z.between(0, 10)),
				PerTryTimeout: b.optDuration(),
				RetryOn: fuzzSubset(z, meshv1alpha1.RetryOn("5xx"), "gateway-error", "reset", "connect-failure", "retriable-4xx",
					"refused-stream", "cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable"),
			}
			if z.chance(2) {
				r.Retries.Budget = &meshv1alpha1.RetryBudget{Percent: int32(z.between(0, 100)), MinRetryConcurrency: int32(fuzzPick(z, 0, 3, 1<<31-1))}
			}
		}
		if z.chance(4) {
			r.Mirror = &meshv1alpha1.Mirror{Host: b.host(), Percent: int32(z.between(0, 100))}
			if z.chance(3) { // a mirror subset has no pattern in the CRD
				r.Mirror.Subset = fuzzPick(z, "v1", "v2", "V 1", "nosuch")
			}
		}
		if z.chance(4) {
			r.Rewrite = &meshv1alpha1.Rewrite{}
			switch z.intn(4) {
			case 0:
				r.Rewrite.URI = b.path()
			case 1:
				r.Rewrite.Prefix = b.path()
			case 2:
				r.Rewrite.Authority = fuzzPick(z, "example.com", "a:8080", "")
			default:
				r.Rewrite.Prefix, r.Rewrite.Authority = b.path(), "b.example.com"
			}
			if r.Rewrite.URI == "" && r.Rewrite.Prefix == "" && r.Rewrite.Authority == "" {
				r.Rewrite.Authority = "example.com"
			}
		}
	}
	if z.chance(4) {
		r.Fault = &meshv1alpha1.Fault{}
		if z.chance(2) {
			r.Fault.Delay = &meshv1alpha1.FaultDelay{FixedDelay: *b.duration(), Percent: int32(z.between(0, 100))}
		}
		if r.Fault.Delay == nil || z.chance(2) {
			r.Fault.Abort = &meshv1alpha1.FaultAbort{HTTPStatus: int32(fuzzPick(z, 200, 400, 418, 503, 599)), Percent: int32(z.between(0, 100))}
		}
	}
	if z.chance(3) {
		r.Headers = &meshv1alpha1.HeaderEdits{Request: b.headerOps(), Response: b.headerOps()}
	}
	return r
}

func (b *fuzzInputs) meshRoute(ns string, i int) {
	z := b.z
	mr := meshv1alpha1.MeshRoute{ObjectMeta: b.meta(fmt.Sprintf("mr-%d", i), ns)}
	for range z.between(1, 3) {
		if h := b.host(); !slices.Contains(mr.Spec.Hosts, h) { // listType=set
			mr.Spec.Hosts = append(mr.Spec.Hosts, h)
		}
	}
	for range z.intn(5) {
		mr.Spec.HTTP = append(mr.Spec.HTTP, b.rule())
	}
	b.in.MeshRoutes = append(b.in.MeshRoutes, mr)
}

func (b *fuzzInputs) mode() meshv1alpha1.PeerMTLSMode {
	return fuzzPick(b.z, meshv1alpha1.PeerMTLSMode(""), meshv1alpha1.PeerMTLSStrict, meshv1alpha1.PeerMTLSPermissive,
		meshv1alpha1.PeerMTLSDisable, meshv1alpha1.PeerMTLSUnset)
}

func (b *fuzzInputs) peerAuthentication(ns string, i int) {
	z := b.z
	pa := meshv1alpha1.PeerAuthentication{ObjectMeta: b.meta(fmt.Sprintf("pa-%d", i), ns)}
	pa.Spec.MTLS.Mode = b.mode()
	switch z.intn(4) {
	case 1:
		pa.Spec.Selector = &meshv1alpha1.WorkloadSelector{}
	case 2, 3:
		pa.Spec.Selector = &meshv1alpha1.WorkloadSelector{MatchLabels: map[string]string{}}
		if z.chance(2) {
			pa.Spec.Selector.MatchLabels["app"] = fuzzPick(z, slices.Concat(fuzzServiceNames, []string{"client"})...)
		}
		if z.chance(2) {
			pa.Spec.Selector.MatchLabels["version"] = fuzzPick(z, "v1", "v2")
		}
	}
	if pa.Spec.Selector != nil && len(pa.Spec.Selector.MatchLabels) > 0 && z.chance(2) {
		pa.Spec.PortLevelMTLS = map[string]meshv1alpha1.PeerMTLS{}
		for range z.between(1, 3) {
			port := fuzzPick(z, 8080, 9091, 9102, 9080, 5432, 15006, 1, 65535)
			pa.Spec.PortLevelMTLS[strconv.Itoa(port)] = meshv1alpha1.PeerMTLS{Mode: b.mode()}
		}
	}
	b.in.PeerAuthentications = append(b.in.PeerAuthentications, pa)
}
