package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/controllers"
	"github.com/capstanmesh/capstan/controllers/certificates"
	"github.com/capstanmesh/capstan/controllers/rootca"
	"github.com/capstanmesh/capstan/internal/app"
	"github.com/capstanmesh/capstan/test/envtest"
	"github.com/capstanmesh/capstan/webhook/inject"
	"github.com/capstanmesh/capstan/xds/auth/kubeauth"
	"github.com/capstanmesh/capstan/xds/server"
)

// operatorNamespace is the injector's default: sidecars dial
// capstan-xds.capstan-system.svc:15012, which every pod's hosts file
// resolves to the bridge address the operator listens on.
const operatorNamespace = "capstan-system"

// operatorOptions change the production setup for a test.
type operatorOptions struct {
	// MaxWorkloadTTL caps workload certificates' lifetime (rotation tests).
	MaxWorkloadTTL time.Duration
}

// operator is the manager as cmd/manager runs it in production: the
// certificate manager (built-in CA, or cert-manager when the Mesh says
// so), the root CA publisher and the xDS pipeline over TLS with
// authenticated streams and the token exchange, serving on the bridge.
type operator struct {
	certs  *certificates.Manager
	server *server.Server
	cancel context.CancelFunc
	done   chan error
	// metricsURL is the manager's metrics endpoint (controller-runtime's
	// registry), on loopback.
	metricsURL string
}

// freeLoopbackAddr is a loopback address with a port free a moment ago,
// for a server that takes an address rather than a listener.
func freeLoopbackAddr() (string, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := lis.Addr().String()
	return addr, lis.Close()
}

// xdsHosts are the names sidecars reach the operator by.
func xdsHosts() []string {
	host := inject.XDSServiceName + "." + operatorNamespace + ".svc"
	return []string{host, host + ".cluster.local"}
}

// startOperator starts the operator against env, listening for xDS on
// addr (the bridge's address, port 15012), and waits until its caches have
// synced and its listener is up.
func startOperator(env *envtest.Env, addr netip.Addr, opts operatorOptions) (*operator, error) {
	scheme, err := controllers.NewScheme()
	if err != nil {
		return nil, err
	}
	metricsAddr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress: "0",
		// Tests stop the operator and start another in the same process.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	op := &operator{done: make(chan error, 1), metricsURL: "http://" + metricsAddr + "/metrics"}
	meshStatus := controllers.NewMeshStatusWriter(mgr) // one Mesh status writer, as in cmd/manager
	op.certs, err = certificates.NewFor(mgr, certificates.Options{
		MeshStatus: meshStatus,
		Namespace:  operatorNamespace, ServingDNSNames: xdsHosts(), MaxWorkloadTTL: opts.MaxWorkloadTTL,
		// The harness's sidecars report no root fingerprints (it leaves the
		// optional ConfigMap env var empty), so a CA change ends its trust
		// window by this bound; the window itself is tested in test/certs.
		MaxTrustTransition: time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("setting up the certificate manager: %w", err)
	}
	if err := mgr.Add(op.certs); err != nil {
		return nil, err
	}
	bundle := certificates.BundleOf(op.certs)
	publisher := &rootca.Publisher{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Bundle: bundle}
	if err := publisher.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	op.certs.OnChange(func(string) { publisher.BundleChanged() })
	lis, err := listenXDS(addr)
	if err != nil {
		return nil, err
	}
	op.server, err = app.AddPipeline(mgr, app.PipelineOptions{
		Listener:       lis,
		Secrets:        op.certs,
		GetCertificate: op.certs.GetCertificate,
		Authenticator:  &kubeauth.TokenReviewAuthenticator{Client: mgr.GetClient(), Audience: kubeauth.XDSTokenAudience},
		Pods:           kubeauth.PodLookup{Reader: mgr.GetClient()},
		Debounce:       20 * time.Millisecond,
		MaxDelay:       200 * time.Millisecond,
		MeshStatus:     meshStatus,
		// The Mesh's connected proxies and earliest certificate expiry.
		MeshStatusInterval: 200 * time.Millisecond,
	})
	if err != nil {
		_ = lis.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	op.cancel = cancel
	go func() { op.done <- mgr.Start(ctx) }()
	syncCtx, syncCancel := context.WithTimeout(ctx, 30*time.Second)
	defer syncCancel()
	if !mgr.GetCache().WaitForCacheSync(syncCtx) {
		return nil, errors.Join(errors.New("the operator's caches did not sync within 30s"), op.stop())
	}
	return op, nil
}

// exchangePort is where the xDS Service serves the token exchange besides
// 15012 (the injector's token exchange URL has no port).
const exchangePort = 443

// listenXDS listens on addr's 15012 and 443, as the xDS Service's two
// ports (443 for the token exchange) both lead to the operator's 15012.
func listenXDS(addr netip.Addr) (net.Listener, error) {
	xds, err := listenRetrying(net.JoinHostPort(addr.String(), strconv.Itoa(meshv1alpha1.PortXDS)))
	if err != nil {
		return nil, err
	}
	exchange, err := listenRetrying(net.JoinHostPort(addr.String(), strconv.Itoa(exchangePort)))
	if err != nil {
		return nil, errors.Join(err, xds.Close())
	}
	return newMergedListener(xds, exchange), nil
}

// mergedListener accepts from several listeners.
type mergedListener struct {
	lis   []net.Listener
	conns chan net.Conn
	errs  chan error
	once  sync.Once
	done  chan struct{}
}

func newMergedListener(lis ...net.Listener) *mergedListener {
	m := &mergedListener{lis: lis, conns: make(chan net.Conn), errs: make(chan error, len(lis)), done: make(chan struct{})}
	for _, l := range lis {
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					m.errs <- err
					return
				}
				select {
				case m.conns <- c:
				case <-m.done:
					_ = c.Close()
					return
				}
			}
		}()
	}
	return m
}

func (m *mergedListener) Accept() (net.Conn, error) {
	select {
	case c := <-m.conns:
		return c, nil
	case err := <-m.errs:
		return nil, err
	case <-m.done:
		return nil, net.ErrClosed
	}
}

func (m *mergedListener) Close() error {
	var errs []error
	m.once.Do(func() {
		close(m.done)
		for _, l := range m.lis {
			errs = append(errs, l.Close())
		}
	})
	return errors.Join(errs...)
}

func (m *mergedListener) Addr() net.Addr { return m.lis[0].Addr() }

// listenRetrying listens on addr, retrying for a while when the previous
// operator's listener is still being closed.
func listenRetrying(addr string) (net.Listener, error) {
	var lis net.Listener
	err := envtest.Poll(context.Background(), 10*time.Second, func() error {
		var err error
		lis, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listening for xDS on %s: %w", addr, err)
	}
	return lis, nil
}

// stop stops the operator and waits for it.
func (op *operator) stop() error {
	op.cancel()
	select {
	case err := <-op.done:
		if err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("the operator: %w", err)
		}
		return nil
	case <-time.After(30 * time.Second):
		return errors.New("the operator did not stop within 30s")
	}
}

var _ manager.Runnable = (*certificates.Manager)(nil)

// ensureNamespace creates a namespace (with labels) unless it exists.
func ensureNamespace(ctx context.Context, env *envtest.Env, name string, labels map[string]string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := env.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return nil
}
