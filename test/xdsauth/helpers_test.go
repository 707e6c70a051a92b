package xdsauth

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/go-logr/logr/funcr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/capstanmesh/capstan/internal/meshmetrics"
	"github.com/capstanmesh/capstan/test/xdsclient"
	"github.com/capstanmesh/capstan/xds/auth/kubeauth"
	"github.com/capstanmesh/capstan/xds/server"
)

// waitTimeout bounds every wait; nothing sleeps for a fixed time.
const waitTimeout = 30 * time.Second

const clusterName = "static-backend"

// logBuffer collects the server's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) write(prefix, args string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(prefix + " " + args + "\n")
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// xdsServer is an authenticating xDS server on loopback.
type xdsServer struct {
	*server.Server
	addr string
	logs *logBuffer
}

// startServer serves xDS with the TokenReview authenticator and the API as
// PodLookup until t ends. cacheTTL is Options.AuthCacheTTL.
func startServer(t *testing.T, cacheTTL time.Duration) *xdsServer {
	t.Helper()
	return startTLSLessServer(t, func(o *server.Options) { o.AuthCacheTTL = cacheTTL })
}

// startTLSLessServer is an authenticating plaintext server with options
// changed by edit.
func startTLSLessServer(t *testing.T, edit func(*server.Options)) *xdsServer {
	t.Helper()
	logs := &logBuffer{}
	opts := server.Options{
		Logger:        funcr.New(logs.write, funcr.Options{}),
		Authenticator: &kubeauth.TokenReviewAuthenticator{Client: env.Client, Audience: kubeauth.XDSTokenAudience},
		Pods:          kubeauth.PodLookup{Reader: env.Client},
		// The manager's observer: authFailures reads its registry.
		Observer: meshmetrics.XDS(),
	}
	edit(&opts)
	s := server.New(opts)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	serve(t, s, lis)
	return &xdsServer{Server: s, addr: lis.Addr().String(), logs: logs}
}

// publish sets a minimal valid config for a node: one static cluster.
func (s *xdsServer) publish(t *testing.T, nodeID string) {
	t.Helper()
	if _, err := s.SetProxyResources(nodeID, map[string][]types.Resource{resourcev3.ClusterType: {staticCluster()}}); err != nil {
		t.Fatalf("SetProxyResources(%s): %v", nodeID, err)
	}
}

// staticCluster is clusterName with one static endpoint.
func staticCluster() *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 clusterName,
		ConnectTimeout:       durationpb.New(time.Second),
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: clusterName,
			Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
					Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
						Address:       "10.1.0.1",
						PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 8080},
					}}},
				}},
			}}}},
		},
	}
}

// errNotYet is what a polled check returns until its state is reached.
var errNotYet = errors.New("not yet")

// bearer is per-call "authorization: Bearer" credentials (TLS only).
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return true }

// checkNoTokenLogged fails if a token appears in the server's logs.
func (s *xdsServer) checkNoTokenLogged(t *testing.T, tokens ...string) {
	t.Helper()
	logs := s.logs.String()
	for _, tok := range tokens {
		if tok != "" && strings.Contains(logs, tok) {
			t.Errorf("a token appears in the xDS server's logs")
		}
	}
}

func clientset(t *testing.T) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatalf("clientset: %v", err)
	}
	return cs
}

// workload is a ServiceAccount and a pod running as it.
type workload struct {
	ns, sa string
	pod    *corev1.Pod
	nodeID string
}

// newWorkload creates a ServiceAccount (unless it exists) and a pod with
// that ServiceAccount and a pod IP.
func newWorkload(t *testing.T, ns, sa, pod, ip string) *workload {
	t.Helper()
	ctx := context.Background()
	acct := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa}}
	if err := env.Client.Create(ctx, acct); client.IgnoreAlreadyExists(err) != nil {
		t.Fatalf("creating ServiceAccount %s/%s: %v", ns, sa, err)
	}
	p := createPod(t, ns, sa, pod, ip)
	id := server.NodeID{Type: server.NodeSidecar, IP: netip.MustParseAddr(ip), Pod: pod, Namespace: ns, Domain: "svc.cluster.local"}
	return &workload{ns: ns, sa: sa, pod: p, nodeID: id.String()}
}

func createPod(t *testing.T, ns, sa, name, ip string) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{
			ServiceAccountName:           sa,
			AutomountServiceAccountToken: ptr.To(false),
			Containers:                   []corev1.Container{{Name: "app", Image: "app:1"}},
		},
	}
	if err := env.Client.Create(ctx, p); err != nil {
		t.Fatalf("creating pod %s/%s: %v", ns, name, err)
	}
	p.Status.PodIP = ip
	p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	p.Status.Phase = corev1.PodRunning
	if err := env.Client.Status().Update(ctx, p); err != nil {
		t.Fatalf("setting pod %s/%s's IP: %v", ns, name, err)
	}
	return p
}

// token requests a token of the workload's ServiceAccount for audience,
// bound to the workload's pod.
func (w *workload) token(t *testing.T, audience string) string {
	t.Helper()
	tr := &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{
		Audiences:         []string{audience},
		ExpirationSeconds: ptr.To[int64](600),
		BoundObjectRef: &authnv1.BoundObjectReference{
			Kind: "Pod", APIVersion: "v1", Name: w.pod.Name, UID: w.pod.UID,
		},
	}}
	out, err := clientset(t).CoreV1().ServiceAccounts(w.ns).CreateToken(context.Background(), w.sa, tr, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("CreateToken for %s/%s: %v", w.ns, w.sa, err)
	}
	if out.Status.Token == "" {
		t.Fatal("CreateToken returned no token")
	}
	return out.Status.Token
}

// authFailures reads capstan_xds_auth_failures_total{reason}.
func authFailures(t *testing.T, reason string) float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatalf("gathering metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != "capstan_xds_auth_failures_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// outcome opens a delta stream as nodeID with opts, subscribes to clusters
// and waits until the stream either holds the cluster (accepted, err nil)
// or ends (err is its status). A stream still open after waitTimeout with
// nothing received fails the test.
func outcome(t *testing.T, s *xdsServer, nodeID string, opts ...grpc.DialOption) (*xdsclient.Delta, error) {
	t.Helper()
	c := xdsclient.DialDeltaWith(t, s.addr, nodeID, opts...)
	// The server may have ended the stream already; the error is read below.
	_ = c.TrySubscribe(resourcev3.ClusterType)
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := c.Err(); err != nil {
			return c, err
		}
		if _, ok := c.Snapshot()[resourcev3.ClusterType][clusterName]; ok {
			return c, nil
		}
		if time.Now().After(deadline) {
			t.Fatalf("xDS stream of %s neither refused nor served within %s", nodeID, waitTimeout)
		}
		<-tick.C
	}
}

// wantRefused checks that a stream was refused with PermissionDenied for
// reason and received nothing.
func wantRefused(t *testing.T, c *xdsclient.Delta, err error, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("stream accepted, want PermissionDenied (%s)", reason)
	}
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("stream ended with %v, want PermissionDenied", err)
	}
	if msg := status.Convert(err).Message(); !strings.Contains(msg, reason) {
		t.Errorf("refusal %q does not name reason %s", msg, reason)
	}
	if r := c.Responses(); len(r) != 0 {
		t.Errorf("refused stream received %d responses: %+v", len(r), r)
	}
}
