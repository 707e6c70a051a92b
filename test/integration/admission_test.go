package integration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// invalidCase is an object the API server must refuse, with the field path
// and the words its error must contain.
type invalidCase struct {
	name  string
	spec  string
	field string
	msg   string
	// objName overrides the object's name (the Mesh is named "default").
	objName string
}

// route is a MeshRoute spec for host reviews with one rule; its YAML is
// appended under the rule.
func route(rule string) string {
	return "hosts: [reviews]\nhttp:\n- " + strings.ReplaceAll(strings.TrimSpace(rule), "\n", "\n  ") + "\n"
}

const toReviews = "route: [{host: reviews}]"

var meshRouteCases = []invalidCase{
	{name: "weights do not sum to 100", spec: route("route: [{host: reviews, subset: v1, weight: 50}, {host: reviews, subset: v2, weight: 40}]"),
		field: "spec.http[0].route", msg: "weights of the destinations must sum to 100"},
	{name: "missing weight counts as 0", spec: route("route: [{host: reviews, subset: v1, weight: 60}, {host: reviews, subset: v2}]"),
		field: "spec.http[0].route", msg: "weights of the destinations must sum to 100"},
	{name: "redirect with route", spec: route(toReviews + "\nredirect: {uri: /new}"),
		field: "spec.http[0].redirect", msg: "redirect and route are mutually exclusive"},
	{name: "rule with neither route nor redirect", spec: route("name: empty"),
		field: "spec.http[0].route", msg: "a rule needs a route or a redirect"},
	{name: "redirect with retries", spec: route("redirect: {uri: /new}\nretries: {attempts: 2}"),
		field: "spec.http[0].redirect", msg: "a redirect rule cannot have retries, mirror, rewrite or timeout"},
	{name: "redirect without uri or authority", spec: route("redirect: {code: 302}"),
		field: "spec.http[0].redirect", msg: "a redirect needs uri or authority"},
	{name: "redirect code 305", spec: route("redirect: {uri: /new, code: 305}"),
		field: "spec.http[0].redirect.code", msg: `Unsupported value: 305`},
	{name: "fault delay percent over 100", spec: route(toReviews + "\nfault: {delay: {fixedDelay: 1s, percent: 101}}"),
		field: "spec.http[0].fault.delay.percent", msg: "should be less than or equal to 100"},
	{name: "fault abort percent negative", spec: route(toReviews + "\nfault: {abort: {httpStatus: 503, percent: -1}}"),
		field: "spec.http[0].fault.abort.percent", msg: "should be greater than or equal to 0"},
	{name: "fault abort status 600", spec: route(toReviews + "\nfault: {abort: {httpStatus: 600}}"),
		field: "spec.http[0].fault.abort.httpStatus", msg: "should be less than or equal to 599"},
	{name: "fault with neither delay nor abort", spec: route(toReviews + "\nfault: {}"),
		field: "spec.http[0].fault", msg: "a fault needs a delay or an abort"},
	{name: "mirror percent over 100", spec: route(toReviews + "\nmirror: {host: reviews-shadow, percent: 150}"),
		field: "spec.http[0].mirror.percent", msg: "should be less than or equal to 100"},
	{name: "retry budget percent over 100", spec: route(toReviews + "\nretries: {attempts: 2, budget: {percent: 101}}"),
		field: "spec.http[0].retries.budget.percent", msg: "should be less than or equal to 100"},
	{name: "retry attempts 11", spec: route(toReviews + "\nretries: {attempts: 11}"),
		field: "spec.http[0].retries.attempts", msg: "should be less than or equal to 10"},
	{name: "bad retryOn", spec: route(toReviews + "\nretries: {attempts: 2, retryOn: [5xxx]}"),
		field: "spec.http[0].retries.retryOn[0]", msg: `Unsupported value: "5xxx"`},
	{name: "bad regex in path", spec: route(toReviews + "\nmatch: [{path: {type: RegularExpression, value: '/api/(v1'}}]"),
		field: "spec.http[0].match[0].path", msg: "value must be a valid RE2 regular expression"},
	{name: "bad regex in header", spec: route(toReviews + "\nmatch: [{headers: [{name: x-user, type: RegularExpression, value: '[a-'}]}]"),
		field: "spec.http[0].match[0].headers[0]", msg: "value must be a valid RE2 regular expression"},
	{name: "bad regex in query", spec: route(toReviews + "\nmatch: [{queryParams: [{name: q, type: RegularExpression, value: 'a**'}]}]"),
		field: "spec.http[0].match[0].queryParams[0]", msg: "value must be a valid RE2 regular expression"},
	{name: "lookahead is not RE2", spec: route(toReviews + "\nmatch: [{path: {type: RegularExpression, value: '/(?=api)'}}]"),
		field: "spec.http[0].match[0].path", msg: "value must be a valid RE2 regular expression"},
	{name: "path not starting with /", spec: route(toReviews + "\nmatch: [{path: {value: api}}]"),
		field: "spec.http[0].match[0].path.value", msg: "an Exact or Prefix path must start with '/'"},
	{name: "header Present with value", spec: route(toReviews + "\nmatch: [{headers: [{name: x-canary, type: Present, value: 'yes'}]}]"),
		field: "spec.http[0].match[0].headers[0].value", msg: "value must be empty when type is Present"},
	{name: "header Exact without value", spec: route(toReviews + "\nmatch: [{headers: [{name: x-canary}]}]"),
		field: "spec.http[0].match[0].headers[0].value", msg: "value is required unless type is Present"},
	{name: "bad method", spec: route(toReviews + "\nmatch: [{method: FETCH}]"),
		field: "spec.http[0].match[0].method", msg: `Unsupported value: "FETCH"`},
	{name: "rewrite with uri and prefix", spec: route(toReviews + "\nmatch: [{path: {value: /a}}]\nrewrite: {uri: /b, prefix: /c}"),
		field: "spec.http[0].rewrite.prefix", msg: "uri and prefix are mutually exclusive"},
	{name: "negative weight", spec: route("route: [{host: reviews, weight: -10}, {host: ratings, weight: 110}]"),
		field: "spec.http[0].route[0].weight", msg: "should be greater than or equal to 0"},
	{name: "weight over 100", spec: route("route: [{host: reviews, weight: 101}]"),
		field: "spec.http[0].route[0].weight", msg: "should be less than or equal to 100"},
	{name: "hosts empty", spec: "hosts: []\nhttp: [{" + toReviews + "}]",
		field: "spec.hosts", msg: "should have at least 1 items"},
	{name: "17 hosts", spec: "hosts: [h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13, h14, h15, h16, h17]\nhttp: [{" + toReviews + "}]",
		field: "spec.hosts", msg: "must have at most 16 items"},
	{name: "invalid host name", spec: "hosts: [Reviews_V1]\nhttp: [{" + toReviews + "}]",
		field: "spec.hosts[0]", msg: "should match"},
	{name: "invalid destination host", spec: route("route: [{host: 'reviews:9080'}]"),
		field: "spec.http[0].route[0].host", msg: "should match"},
	{name: "bad timeout", spec: route(toReviews + "\ntimeout: soon"),
		field: "spec.http[0].timeout", msg: "should match"},
}

var destinationPolicyCases = []invalidCase{
	{name: "loadBalancer with simple and consistentHash", spec: "host: reviews\ntrafficPolicy: {loadBalancer: {simple: RANDOM, consistentHash: {useSourceIP: true}}}",
		field: "spec.trafficPolicy.loadBalancer", msg: "exactly one of simple or consistentHash must be set"},
	{name: "loadBalancer with neither", spec: "host: reviews\ntrafficPolicy: {loadBalancer: {}}",
		field: "spec.trafficPolicy.loadBalancer", msg: "exactly one of simple or consistentHash must be set"},
	{name: "consistentHash with two keys", spec: "host: reviews\ntrafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user, useSourceIP: true}}}",
		field: "spec.trafficPolicy.loadBalancer.consistentHash", msg: "exactly one of httpHeaderName, httpCookie or useSourceIP must be set"},
	{name: "bad load balancer", spec: "host: reviews\ntrafficPolicy: {loadBalancer: {simple: LEAST_CONN}}",
		field: "spec.trafficPolicy.loadBalancer.simple", msg: `Unsupported value: "LEAST_CONN"`},
	{name: "subset without labels", spec: "host: reviews\nsubsets: [{name: v1}]",
		field: "spec.subsets[0].labels", msg: "Required value"},
	{name: "subset with empty labels", spec: "host: reviews\nsubsets: [{name: v1, labels: {}}]",
		field: "spec.subsets[0].labels", msg: "should have at least 1 properties"},
	{name: "duplicate subset names", spec: "host: reviews\nsubsets: [{name: v1, labels: {version: v1}}, {name: v1, labels: {version: v2}}]",
		field: "spec.subsets[1]", msg: "Duplicate value"},
	{name: "outlier maxEjectionPercent over 100", spec: "host: reviews\ntrafficPolicy: {outlierDetection: {maxEjectionPercent: 101}}",
		field: "spec.trafficPolicy.outlierDetection.maxEjectionPercent", msg: "should be less than or equal to 100"},
	{name: "zero max connections", spec: "host: reviews\ntrafficPolicy: {connectionPool: {tcp: {maxConnections: 0}}}",
		field: "spec.trafficPolicy.connectionPool.tcp.maxConnections", msg: "should be greater than or equal to 1"},
	{name: "invalid host", spec: "host: reviews.default.svc.cluster.local.",
		field: "spec.host", msg: "should match"},
}

var peerAuthenticationCases = []invalidCase{
	{name: "portLevelMtls without selector", spec: "mtls: {mode: STRICT}\nportLevelMtls: {'8080': {mode: PERMISSIVE}}",
		field: "spec.portLevelMtls", msg: "portLevelMtls requires a selector with matchLabels"},
	{name: "portLevelMtls with empty selector", spec: "selector: {matchLabels: {}}\nportLevelMtls: {'8080': {mode: DISABLE}}",
		field: "spec.portLevelMtls", msg: "portLevelMtls requires a selector with matchLabels"},
	{name: "port key not a number", spec: "selector: {matchLabels: {app: reviews}}\nportLevelMtls: {http: {mode: DISABLE}}",
		field: "spec.portLevelMtls", msg: "keys must be port numbers between 1 and 65535"},
	{name: "port key 70000", spec: "selector: {matchLabels: {app: reviews}}\nportLevelMtls: {'70000': {mode: DISABLE}}",
		field: "spec.portLevelMtls", msg: "keys must be port numbers between 1 and 65535"},
	{name: "port key 0", spec: "selector: {matchLabels: {app: reviews}}\nportLevelMtls: {'0': {mode: DISABLE}}",
		field: "spec.portLevelMtls", msg: "keys must be port numbers between 1 and 65535"},
	{name: "bad mode", spec: "mtls: {mode: OPTIONAL}",
		field: "spec.mtls.mode", msg: `Unsupported value: "OPTIONAL"`},
	{name: "bad port-level mode", spec: "selector: {matchLabels: {app: reviews}}\nportLevelMtls: {'8080': {mode: strict}}",
		field: "spec.portLevelMtls.8080.mode", msg: `Unsupported value: "strict"`},
}

var meshCases = []invalidCase{
	{name: "not named default", objName: "other", spec: "{}",
		field: "metadata.name", msg: "the Mesh must be named 'default'"},
	{name: "workloadCertTTL 5m", spec: "certificates: {workloadCertTTL: 5m}",
		field: "spec.certificates.workloadCertTTL", msg: "workloadCertTTL must be between 10m and 720h"},
	{name: "workloadCertTTL 1000h", spec: "certificates: {workloadCertTTL: 1000h}",
		field: "spec.certificates.workloadCertTTL", msg: "workloadCertTTL must be between 10m and 720h"},
	{name: "workloadCertTTL not a duration", spec: "certificates: {workloadCertTTL: a day}",
		field: "spec.certificates.workloadCertTTL", msg: "should match"},
	{name: "rotationFraction 0.2", spec: "certificates: {rotationFraction: 0.2}",
		field: "spec.certificates.rotationFraction", msg: "should be greater than or equal to 0.3"},
	{name: "rotationFraction 0.9", spec: "certificates: {rotationFraction: 0.9}",
		field: "spec.certificates.rotationFraction", msg: "should be less than or equal to 0.8"},
	{name: "CertManager without issuerRef", spec: "certificates: {provider: CertManager}",
		field: "spec.certificates.issuerRef", msg: "issuerRef is required when provider is CertManager"},
	{name: "issuerRef with BuiltIn", spec: "certificates: {provider: BuiltIn, issuerRef: {name: mesh-ca}}",
		field: "spec.certificates.issuerRef", msg: "issuerRef may only be set when provider is CertManager"},
	{name: "issuerRef with defaulted provider", spec: "certificates: {issuerRef: {name: mesh-ca}}",
		field: "spec.certificates.issuerRef", msg: "issuerRef may only be set when provider is CertManager"},
	{name: "bad issuer kind", spec: "certificates: {provider: CertManager, issuerRef: {name: mesh-ca, kind: Vault}}",
		field: "spec.certificates.issuerRef.kind", msg: `Unsupported value: "Vault"`},
	{name: "streamIdleTimeout 800h", spec: "traffic: {streamIdleTimeout: 800h}",
		field: "spec.traffic.streamIdleTimeout", msg: "streamIdleTimeout must be at most 720h"},
	{name: "streamIdleTimeout not a duration", spec: "traffic: {streamIdleTimeout: forever}",
		field: "spec.traffic.streamIdleTimeout", msg: "should match"},
	{name: "bad mtls mode", spec: "mtls: {mode: DISABLE}",
		field: "spec.mtls.mode", msg: `Unsupported value: "DISABLE"`},
	{name: "bad provider", spec: "certificates: {provider: Vault}",
		field: "spec.certificates.provider", msg: `Unsupported value: "Vault"`},
	{name: "bad trust domain", spec: "trustDomain: Cluster_Local",
		field: "spec.trustDomain", msg: "should match"},
	{name: "bad log level", spec: "proxy: {logLevel: verbose}",
		field: "spec.proxy.logLevel", msg: `Unsupported value: "verbose"`},
	{name: "sampling over 100", spec: "telemetry: {tracing: {samplingPercent: 101}}",
		field: "spec.telemetry.tracing.samplingPercent", msg: "should be less than or equal to 100"},
}

// TestInvalidObjectsAreRejected creates each invalid object and checks that
// the API server refuses it for the intended reason, naming the field.
func TestInvalidObjectsAreRejected(t *testing.T) {
	t.Parallel()
	ns := env.NewNamespace(t)
	groups := []struct {
		kind  string
		cases []invalidCase
	}{
		{"MeshRoute", meshRouteCases},
		{"DestinationPolicy", destinationPolicyCases},
		{"PeerAuthentication", peerAuthenticationCases},
		{"Mesh", meshCases},
	}
	for _, g := range groups {
		for _, tc := range g.cases {
			t.Run(g.kind+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				checkRejected(t, g.kind, ns, tc)
			})
		}
	}
}

func checkRejected(t *testing.T, kind, ns string, tc invalidCase) {
	name, opts := "bad", []client.CreateOption{}
	if kind == "Mesh" {
		// The Mesh is a cluster singleton that other tests use: a server-side
		// dry run goes through the same admission (schema, defaults, CEL)
		// without persisting anything.
		ns, name, opts = "", "default", []client.CreateOption{client.DryRunAll}
	}
	if tc.objName != "" {
		name = tc.objName
	}
	obj := fromYAML(t, kind, ns, name, tc.spec)
	err := env.Client.Create(context.Background(), obj, opts...)
	if err == nil {
		if kind != "Mesh" {
			_ = env.Client.Delete(context.Background(), obj)
		}
		t.Fatalf("created; want it refused with %q at %s", tc.msg, tc.field)
	}
	if !apierrors.IsInvalid(err) {
		t.Fatalf("got %v, want an Invalid error", err)
	}
	if !mentions(err, tc.field, tc.msg) {
		t.Errorf("error does not name %s with %q:\n%v", tc.field, tc.msg, err)
	}
}

// mentions says whether one of the error's causes is at field (or, for a
// rule on the object, names the field in its message) and says msg.
func mentions(err error, field, msg string) bool {
	var status *apierrors.StatusError
	if !errors.As(err, &status) || status.ErrStatus.Details == nil {
		return strings.Contains(err.Error(), field) && strings.Contains(err.Error(), msg)
	}
	for _, c := range status.ErrStatus.Details.Causes {
		text := fmt.Sprintf("%s: %s", c.Field, c.Message)
		if strings.Contains(text, field) && strings.Contains(text, msg) {
			return true
		}
	}
	return false
}
