package inject

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// Defaults applied by ConfigFromMesh.
const (
	DefaultOperatorNamespace = "capstan-system"
	DefaultVersion           = "dev"
	DefaultTrustDomain       = "cluster.local"
	DefaultLogLevel          = "warning"
	// XDSServiceName is the operator's xDS Service; the default xDS address is
	// <XDSServiceName>.<operator namespace>.svc:15012.
	XDSServiceName = "capstan-xds"
	// InitImageRepository is the capstan-init image; the tag is the version.
	InitImageRepository = "ghcr.io/capstanmesh/capstan-init"
	// TokenExchangePath is the path of the token exchange (STS) endpoint on the xDS address.
	TokenExchangePath = "/v1/token"
)

// defaultProxyRequests are the proxy's requests when the Mesh sets no resources at all.
var defaultProxyRequests = corev1.ResourceList{
	corev1.ResourceCPU:    resource.MustParse("100m"),
	corev1.ResourceMemory: resource.MustParse("128Mi"),
}

// LogLevels are Envoy's log levels, as Mesh.spec.proxy.logLevel and the
// capstan.dev/proxy-log-level annotation accept them.
var LogLevels = []string{"trace", "debug", "info", "warning", "error", "critical", "off"}

// Options are the injector's settings that do not come from the Mesh.
// Empty fields take defaults.
type Options struct {
	// OperatorNamespace is where the operator runs; its pods are never injected.
	OperatorNamespace string
	// Version of Capstan, recorded in capstan.dev/status and used as the capstan-init tag.
	Version string
	// XDSAddress is host:port of the xDS server.
	XDSAddress string
	// TokenExchangeURL is the STS endpoint the proxy trades its ServiceAccount token at.
	TokenExchangeURL string
	// InitImage is the capstan-init image.
	InitImage string
}

// Config is everything Inject needs. Build it with ConfigFromMesh; treat it as read-only.
type Config struct {
	Version           string
	OperatorNamespace string
	XDSAddress        string
	TokenExchangeURL  string
	TrustDomain       string
	InitImage         string
	ProxyImage        string
	ProxyResources    corev1.ResourceRequirements
	// ProxyConcurrency > 0 fixes Envoy's worker count; 0 derives it from the CPU limit.
	ProxyConcurrency int32
	ProxyLogLevel    string
	// NativeSidecar injects the proxy as an init container with restartPolicy Always.
	NativeSidecar bool
}

// ConfigFromMesh builds the injector's configuration from the Mesh (nil for
// none) and opts, applying the defaults the CRD would apply.
func ConfigFromMesh(mesh *meshv1alpha1.Mesh, opts Options) Config {
	var spec meshv1alpha1.MeshSpec
	if mesh != nil {
		spec = *mesh.Spec.DeepCopy()
	}
	cfg := Config{
		Version:           or(opts.Version, DefaultVersion),
		OperatorNamespace: or(opts.OperatorNamespace, DefaultOperatorNamespace),
		TrustDomain:       or(spec.TrustDomain, DefaultTrustDomain),
		ProxyImage:        or(spec.Proxy.Image, meshv1alpha1.DefaultProxyImage),
		ProxyResources:    spec.Proxy.Resources,
		ProxyConcurrency:  spec.Proxy.Concurrency,
		ProxyLogLevel:     or(spec.Proxy.LogLevel, DefaultLogLevel),
		NativeSidecar:     spec.Injection.NativeSidecar == nil || *spec.Injection.NativeSidecar,
	}
	if len(cfg.ProxyResources.Requests) == 0 && len(cfg.ProxyResources.Limits) == 0 {
		cfg.ProxyResources.Requests = defaultProxyRequests.DeepCopy()
	}
	xdsHost := XDSServiceName + "." + cfg.OperatorNamespace + ".svc"
	cfg.XDSAddress = or(opts.XDSAddress, net.JoinHostPort(xdsHost, strconv.Itoa(meshv1alpha1.PortXDS)))
	// No port in the URL: gRPC core's HTTP client (Envoy's STS call
	// credentials) checks the server's certificate against the URL's
	// authority as written, port included, so "host:15012" never matches a
	// certificate for "host" (seen with Envoy 1.40). The xDS Service serves
	// the exchange on 443 too (targetPort 15012).
	cfg.TokenExchangeURL = or(opts.TokenExchangeURL, "https://"+xdsHost+TokenExchangePath)
	cfg.InitImage = or(opts.InitImage, InitImageRepository+":"+cfg.Version)
	return cfg
}

// Validate reports settings Inject cannot use.
func (c Config) Validate() error {
	var errs []error
	add := func(field, value, problem string) {
		errs = append(errs, fmt.Errorf("%s %q %s", field, value, problem))
	}
	for field, v := range map[string]string{
		"version": c.Version, "proxy image": c.ProxyImage, "init image": c.InitImage,
	} {
		if strings.TrimSpace(v) == "" || strings.ContainsAny(v, " \t\n$") {
			add(field, v, "must be non-empty, without spaces or '$'")
		}
	}
	if msgs := validation.IsDNS1123Label(c.OperatorNamespace); len(msgs) > 0 {
		add("operator namespace", c.OperatorNamespace, "is not a namespace name")
	}
	if msgs := validation.IsDNS1123Subdomain(c.TrustDomain); len(msgs) > 0 {
		add("trust domain", c.TrustDomain, "is not a DNS name")
	}
	if err := validateHostPort(c.XDSAddress); err != nil {
		add("xDS address", c.XDSAddress, err.Error())
	}
	if u, err := url.Parse(c.TokenExchangeURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.Contains(c.TokenExchangeURL, "$") {
		add("token exchange URL", c.TokenExchangeURL, "is not an absolute http(s) URL")
	}
	if !slices.Contains(LogLevels, c.ProxyLogLevel) {
		add("proxy log level", c.ProxyLogLevel, "is not one of "+strings.Join(LogLevels, ", "))
	}
	if c.ProxyConcurrency < 0 || c.ProxyConcurrency > maxConcurrency {
		add("proxy concurrency", itoa(int64(c.ProxyConcurrency)), "is outside 0-64")
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

func validateHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("is not host:port")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return errors.New("has no valid port")
	}
	if net.ParseIP(host) == nil && len(validation.IsDNS1123Subdomain(host)) > 0 {
		return errors.New("has no valid host")
	}
	return nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
