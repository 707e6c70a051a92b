// Command manager is the Capstan operator: it reconciles the mesh CRDs.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"time"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/controllers"
	"github.com/capstanmesh/capstan/controllers/cabundle"
	"github.com/capstanmesh/capstan/controllers/certificates"
	"github.com/capstanmesh/capstan/controllers/rootca"
	"github.com/capstanmesh/capstan/internal/app"
	"github.com/capstanmesh/capstan/webhook/handler"
	"github.com/capstanmesh/capstan/webhook/inject"
	"github.com/capstanmesh/capstan/xds/auth/kubeauth"
	"github.com/capstanmesh/capstan/xds/debugapi"
	"github.com/capstanmesh/capstan/xds/runner"
	"github.com/capstanmesh/capstan/xds/server"
)

// Leader election (--leader-elect) keeps one Lease, leaderElectionID, in the
// operator's namespace: a Role there may create Leases (create cannot be
// restricted by name) and read and renew that one, and record the Events
// client-go's leader election writes about it (core/v1 Events).
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=capstan-system,resources=leases,verbs=create
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=capstan-system,resources=leases,resourceNames=capstan-manager.capstan.dev,verbs=get;update
// +kubebuilder:rbac:groups="",namespace=capstan-system,resources=events,verbs=create;patch

// version is Capstan's release, stamped by the Makefile (-X main.version,
// from its VERSION); the injector records it and tags capstan-init with it.
var version = inject.DefaultVersion

// leaderElectionID names the Lease of --leader-elect.
const leaderElectionID = "capstan-manager.capstan.dev"

// options are the manager's command-line settings.
type options struct {
	MetricsAddr string
	ProbeAddr   string
	LeaderElect bool
	Namespace   string
	XDSAddr     string
	// DebugAddr serves the debug endpoint (proxy-status, proxy-config);
	// empty turns it off.
	DebugAddr string
	// XDSPlaintext serves xDS without TLS and without authentication: for
	// local development only.
	XDSPlaintext bool
	// WebhookCertDir holds tls.crt and tls.key for the admission webhooks.
	WebhookCertDir string
	// WebhookMeshCerts serves the admission webhooks with a certificate from
	// the mesh CA and keeps the webhook configurations' caBundle in sync.
	WebhookMeshCerts bool
	// WebhookPort is where the admission webhooks are served, on
	// WebhookHost (every address when empty).
	WebhookPort int
	WebhookHost string
	// MutatingWebhookConfiguration and ValidatingWebhookConfiguration name
	// the configurations whose caBundle WebhookMeshCerts keeps.
	MutatingWebhookConfiguration, ValidatingWebhookConfiguration string
	// XDSLimits bound connections and streams on the xDS port;
	// XDSReviewLimits the token reviews unauthenticated clients can cause.
	XDSLimits       server.Limits
	XDSReviewLimits server.ReviewLimits
	// XDSRecheckInterval is how often open xDS streams are checked again
	// (pod deleted or replaced, token expired).
	XDSRecheckInterval time.Duration
	// InjectionCPUAccounting records the injection webhook's CPU time per request.
	InjectionCPUAccounting bool
	// MaxTrustTransition bounds how long, after a CA change, xDS is still
	// served from the previous CA for proxies that only trust its root.
	MaxTrustTransition time.Duration
	ZapOptions         zap.Options

	// reuseControllerNames lets tests run the manager more than once in one
	// process (controller-runtime refuses a controller name seen before).
	reuseControllerNames bool
}

func main() {
	opts := parseFlags(flag.CommandLine, os.Args[1:])
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts.ZapOptions)))
	if err := run(ctrl.SetupSignalHandler(), opts); err != nil {
		ctrl.Log.Error(err, "manager exited")
		os.Exit(1)
	}
}

// parseFlags reads the command line; it exits on -h or a bad flag.
// controller-runtime adds --kubeconfig to flag.CommandLine.
func parseFlags(fs *flag.FlagSet, args []string) options {
	var opts options
	fs.StringVar(&opts.MetricsAddr, "metrics-bind-address", fmt.Sprintf(":%d", meshv1alpha1.PortMetrics),
		`address of the Prometheus metrics endpoint ("0" turns it off)`)
	fs.StringVar(&opts.ProbeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	fs.BoolVar(&opts.LeaderElect, "leader-elect", false, "elect a leader so that only one replica writes")
	fs.StringVar(&opts.Namespace, "namespace", defaultNamespace(), "namespace the operator runs in (default $POD_NAMESPACE or capstan-system)")
	fs.StringVar(&opts.XDSAddr, "xds-address", fmt.Sprintf(":%d", meshv1alpha1.PortXDS),
		"address of the xDS server (TLS, authenticated proxies, and the token exchange)")
	fs.StringVar(&opts.DebugAddr, "debug-address", fmt.Sprintf(":%d", debugapi.Port),
		`address of the debug endpoint that capstanctl proxy-status and proxy-config read through the API server (TLS, every request authorized; "" turns it off)`)
	fs.BoolVar(&opts.XDSPlaintext, "xds-plaintext", false,
		"serve xDS in plaintext and without authentication (local development only: never in a cluster)")
	fs.StringVar(&opts.WebhookCertDir, "webhook-cert-dir", "",
		"directory with tls.crt and tls.key for the admission webhooks (--webhook-port) (with neither this nor --webhook-mesh-certs: webhooks off)")
	fs.IntVar(&opts.WebhookPort, "webhook-port", meshv1alpha1.PortWebhook, "port of the admission webhooks")
	fs.StringVar(&opts.WebhookHost, "webhook-host", "", "address the admission webhooks listen on (default: every address)")
	fs.BoolVar(&opts.WebhookMeshCerts, "webhook-mesh-certs", false,
		"serve the admission webhooks (--webhook-port) with a certificate from the mesh CA for the "+webhookServiceName+
			" Service, and keep the webhook configurations' caBundle equal to the mesh root")
	fs.StringVar(&opts.MutatingWebhookConfiguration, "mutating-webhook-configuration", cabundle.DefaultMutatingWebhookConfiguration,
		"the MutatingWebhookConfiguration whose caBundle --webhook-mesh-certs keeps (the ClusterRole may update this name only)")
	fs.StringVar(&opts.ValidatingWebhookConfiguration, "validating-webhook-configuration", cabundle.DefaultValidatingWebhookConfiguration,
		"the ValidatingWebhookConfiguration whose caBundle --webhook-mesh-certs keeps (the ClusterRole may update this name only)")
	fs.BoolVar(&opts.InjectionCPUAccounting, "injection-cpu-accounting", false,
		"record the injection webhook's CPU time per request (capstan_injection_cpu_seconds), for diagnosis")
	bindXDSLimitFlags(fs, &opts.XDSLimits, &opts.XDSReviewLimits)
	fs.DurationVar(&opts.XDSRecheckInterval, "xds-recheck-interval", server.DefaultRecheckInterval,
		"how often open xDS streams are checked again: closed when the pod is gone or replaced or the token expired")
	fs.DurationVar(&opts.MaxTrustTransition, "max-trust-transition", certificates.DefaultMaxTrustTransition,
		"after a change of the Mesh's CA or trust domain, serve xDS from the previous CA at most this long "+
			"while connected proxies do not yet trust the new root (see docs/security.md)")
	opts.ZapOptions.BindFlags(fs)
	_ = fs.Parse(args) // flag.ExitOnError
	return opts
}

// bindXDSLimitFlags binds the xDS server's limits; the defaults are the
// server's (docs/security.md lists them).
func bindXDSLimitFlags(fs *flag.FlagSet, l *server.Limits, r *server.ReviewLimits) {
	fs.IntVar(&l.MaxConcurrentStreams, "xds-max-concurrent-streams", server.DefaultMaxConcurrentStreams,
		"xDS streams per connection (ADS uses one)")
	fs.IntVar(&l.MaxRecvMsgSize, "xds-max-recv-msg-size", server.DefaultMaxRecvMsgSize,
		"largest xDS request accepted, in bytes")
	fs.DurationVar(&l.HandshakeTimeout, "xds-handshake-timeout", server.DefaultHandshakeTimeout,
		"bound on a TLS handshake, the HTTP/2 preface and a token exchange request")
	fs.DurationVar(&l.MaxConnectionIdle, "xds-max-connection-idle", server.DefaultMaxConnectionIdle,
		"close an xDS connection without streams after this long (negative: never)")
	fs.DurationVar(&l.MaxConnectionAge, "xds-max-connection-age", server.DefaultMaxConnectionAge,
		"close every xDS connection after about this long (±10%), so proxies reconnect and authenticate again (negative: never)")
	fs.DurationVar(&l.MaxConnectionAgeGrace, "xds-max-connection-age-grace", server.DefaultMaxConnectionAgeGrace,
		"time streams get to end after --xds-max-connection-age before the connection is closed (negative: unbounded)")
	fs.IntVar(&l.MaxConnections, "xds-max-connections", server.DefaultMaxConnections,
		"open connections to the xDS port; more are closed at once (negative: no cap)")
	fs.IntVar(&l.MaxConnectionsPerPeer, "xds-max-connections-per-peer", server.DefaultMaxConnectionsPerPeer,
		"open connections to the xDS port per remote IP address (negative: no cap)")
	fs.IntVar(&r.MaxInFlight, "xds-token-reviews-in-flight", server.DefaultMaxReviewsInFlight,
		"TokenReviews running at once for the xDS server")
	fs.IntVar(&r.MaxInFlightPerPeer, "xds-token-reviews-in-flight-per-peer", server.DefaultMaxReviewsInFlightPerPeer,
		"TokenReviews running at once for one remote IP address")
	fs.Float64Var(&r.PerSecondPerPeer, "xds-token-reviews-per-second-per-peer", server.DefaultReviewsPerSecondPerPeer,
		"sustained TokenReviews per second for one remote IP address")
	fs.IntVar(&r.BurstPerPeer, "xds-token-review-burst-per-peer", server.DefaultReviewBurstPerPeer,
		"TokenReviews one remote IP address may cause at once before the per-second rate applies")
	fs.DurationVar(&r.QueueTimeout, "xds-token-review-queue-timeout", server.DefaultReviewQueueTimeout,
		"how long a TokenReview waits for one of --xds-token-reviews-in-flight")
	fs.DurationVar(&r.RefusalCacheTTL, "xds-token-refusal-cache-ttl", server.DefaultRefusalCacheTTL,
		"how long a refused token is refused again without a TokenReview (negative: not cached)")
}

// defaultNamespace is $POD_NAMESPACE, set by the downward API, or capstan-system.
func defaultNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	return "capstan-system"
}

// run finds the kubeconfig (--kubeconfig, $KUBECONFIG, in-cluster) and runs
// the manager with it (runWithConfig).
func run(ctx context.Context, opts options) error {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("finding a kubeconfig: %w", err)
	}
	return runWithConfig(ctx, cfg, opts)
}

// runWithConfig builds the manager on cfg, registers the controllers and
// health checks, and blocks until ctx ends.
func runWithConfig(ctx context.Context, cfg *rest.Config, opts options) error {
	log := ctrl.Log.WithName("setup")
	scheme, err := controllers.NewScheme()
	if err != nil {
		return err
	}
	// The certificate manager is made once the manager exists; the webhook
	// server asks it for its certificate only when it serves.
	var certs *certificates.Manager
	webhookOpts := webhook.Options{Host: opts.WebhookHost, Port: opts.WebhookPort, CertDir: opts.WebhookCertDir}
	if opts.WebhookMeshCerts {
		webhookOpts.TLSOpts = []func(*tls.Config){func(c *tls.Config) {
			c.GetCertificate = func(h *tls.ClientHelloInfo) (*tls.Certificate, error) { return certs.GetCertificate(h) }
		}}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme,
		// Kinds the ClusterRole grants by name only are cached by name.
		Cache:                   cache.Options{ByObject: app.NameScopedCache(opts.MutatingWebhookConfiguration, opts.ValidatingWebhookConfiguration)},
		Metrics:                 metricsserver.Options{BindAddress: opts.MetricsAddr},
		WebhookServer:           webhook.NewServer(webhookOpts),
		HealthProbeBindAddress:  opts.ProbeAddr,
		LeaderElection:          opts.LeaderElect,
		LeaderElectionID:        leaderElectionID,
		LeaderElectionNamespace: opts.Namespace,
		Controller:              config.Controller{SkipNameValidation: &opts.reuseControllerNames},
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	if err := setupWebhooks(mgr, opts); err != nil {
		return err
	}
	if certs, err = setupXDS(mgr, opts); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("adding the health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("adding the readiness check: %w", err)
	}
	log.Info("starting the manager", "version", version, "namespace", opts.Namespace, "metrics", opts.MetricsAddr,
		"probes", opts.ProbeAddr, "xds", opts.XDSAddr, "xdsPlaintext", opts.XDSPlaintext, "leaderElection", opts.LeaderElect)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("running the manager: %w", err)
	}
	return nil
}

// setupWebhooks serves the admission webhooks when a certificate directory
// is given or the mesh CA provides the certificate.
func setupWebhooks(mgr ctrl.Manager, opts options) error {
	if opts.WebhookCertDir == "" && !opts.WebhookMeshCerts {
		ctrl.Log.WithName("setup").Info("admission webhooks off: neither --webhook-cert-dir nor --webhook-mesh-certs")
		return nil
	}
	handler.SetCPUAccounting(opts.InjectionCPUAccounting)
	return handler.SetupWebhooks(mgr, handler.Options{Inject: inject.Options{OperatorNamespace: opts.Namespace, Version: version}})
}

// setupXDS adds the certificate manager, the root CA publisher and the xDS
// pipeline: TLS with a serving certificate from the mesh's provider and
// authenticated streams, unless XDSPlaintext.
func setupXDS(mgr ctrl.Manager, opts options) (*certificates.Manager, error) {
	names := append(xdsDNSNames(opts.Namespace), debugDNSNames(opts.Namespace)...)
	if opts.WebhookMeshCerts {
		names = append(names, webhookDNSNames(opts.Namespace)...)
	}
	// One writer of the Mesh status, shared by the certificate manager and
	// the Mesh's status reconcilers.
	meshStatus := controllers.NewMeshStatusWriter(mgr)
	certs, err := certificates.NewFor(mgr, certificates.Options{
		MeshStatus:         meshStatus,
		Namespace:          opts.Namespace,
		ServingDNSNames:    names,
		MaxTrustTransition: opts.MaxTrustTransition,
	})
	if err != nil {
		return nil, fmt.Errorf("setting up the certificate manager: %w", err)
	}
	if err := mgr.Add(certs); err != nil {
		return nil, fmt.Errorf("adding the certificate manager: %w", err)
	}
	bundle := certificates.BundleOf(certs)
	publisher := &rootca.Publisher{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Bundle: bundle}
	if err := publisher.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	certs.OnChange(func(string) { publisher.BundleChanged() })
	if opts.WebhookMeshCerts {
		injector := &cabundle.Injector{Client: mgr.GetClient(), Bundle: bundle,
			Mutating: opts.MutatingWebhookConfiguration, Validating: opts.ValidatingWebhookConfiguration}
		if err := injector.SetupWithManager(mgr); err != nil {
			return nil, err
		}
		certs.OnChange(func(string) { injector.BundleChanged() })
	}
	xds := app.PipelineOptions{Addr: opts.XDSAddr, Secrets: certs, Limits: opts.XDSLimits, ReviewLimits: opts.XDSReviewLimits,
		RecheckInterval: opts.XDSRecheckInterval, MeshStatus: meshStatus}
	if !opts.XDSPlaintext {
		xds.GetCertificate = certs.GetCertificate
		xds.Authenticator = &kubeauth.TokenReviewAuthenticator{Client: mgr.GetClient(), Audience: kubeauth.XDSTokenAudience}
		xds.Pods = kubeauth.PodLookup{Reader: mgr.GetClient()}
		xds.DebugAddr = opts.DebugAddr
		xds.DebugAuthorizer = &kubeauth.DebugAuthorizer{Client: mgr.GetClient()}
	}
	srv, err := app.AddPipeline(mgr, xds)
	if err != nil {
		return nil, err
	}
	if !opts.XDSPlaintext {
		// Streams of a deleted or replaced pod close at once.
		if err := (&kubeauth.PodRechecker{OnChange: srv.RecheckPod}).SetupWithManager(mgr); err != nil {
			return nil, err
		}
	}
	certs.SetProxyRoots(runner.ConnectedRoots{Statuses: srv})
	return certs, nil
}

// webhookServiceName is the Service in front of the admission webhooks.
const webhookServiceName = "capstan-webhook"

// webhookDNSNames are the names the API server calls the webhooks by.
func webhookDNSNames(namespace string) []string {
	host := webhookServiceName + "." + namespace + ".svc"
	return []string{host, host + ".cluster.local"}
}

// xdsDNSNames are the names of the xDS Service that proxies dial and
// verify the serving certificate against.
func xdsDNSNames(namespace string) []string {
	host := inject.XDSServiceName + "." + namespace + ".svc"
	return []string{host, host + ".cluster.local"}
}

// debugDNSNames are the names of the debug endpoint's Service. The API
// server's service proxy does not verify them; a direct client may.
func debugDNSNames(namespace string) []string {
	host := debugapi.ServiceName + "." + namespace + ".svc"
	return []string{host, host + ".cluster.local"}
}
