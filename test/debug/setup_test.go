package debug

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/big"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/go-logr/logr/testr"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/capstanmesh/capstan/test/debugfixture"
	"github.com/capstanmesh/capstan/test/rbac"
	"github.com/capstanmesh/capstan/test/xdsclient"
	"github.com/capstanmesh/capstan/xds/auth/kubeauth"
	"github.com/capstanmesh/capstan/xds/debug"
	"github.com/capstanmesh/capstan/xds/debugapi"
	"github.com/capstanmesh/capstan/xds/server"
)

const (
	operatorNS  = rbac.ManifestNamespace
	operatorPod = "capstan-manager-0"
	usersNS     = "debug-users"
	webNode     = "sidecar~10.0.0.7~web-0.shop~shop.svc.cluster.local"
	cartNode    = "sidecar~10.0.0.9~cart-0.shop~shop.svc.cluster.local"
	adminNode   = "sidecar~10.0.1.2~admin-0.ops~ops.svc.cluster.local"
	nackText    = "Proto constraint validation failed: this proxy refuses the clusters"
	waitTimeout = 30 * time.Second
)

// mesh is the running state every test reads.
type mesh struct {
	web debugfixture.Config
	// addr is the debug endpoint's own address (host:port), on ip.
	addr, ip string
	// tokens are bearer tokens of the test users, by name.
	tokens map[string]string
}

// start runs the operator's side (xDS server, real ADS clients, the debug
// endpoint with the real authorizer as the operator's ServiceAccount) and
// writes the Service, Pod and EndpointSlice through which the API server
// proxies to it.
func start(t *testing.T) *mesh {
	t.Helper()
	ip := hostAddress(t)
	srv := server.New(server.Options{Logger: testr.New(t)})
	xdsAddr := serve(t, "127.0.0.1:0", func(ctx context.Context, lis net.Listener) error { return srv.Serve(ctx, lis) })
	m := &mesh{web: debugfixture.New(t, "spiffe://cluster.local/ns/shop/sa/web")}
	publish(t, srv, m.web)
	connect(t, xdsAddr)
	operator := operatorClient(t)
	h := debug.NewHandler(debug.Options{Logger: testr.New(t), Source: srv, Authorizer: &kubeauth.DebugAuthorizer{Client: operator}})
	cert := servingCert(t)
	m.addr = serve(t, net.JoinHostPort(ip, "0"), func(ctx context.Context, lis net.Listener) error {
		return debug.Serve(ctx, lis, h, func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil })
	})
	_, port, _ := net.SplitHostPort(m.addr)
	expose(t, operatorNS, ip, port)
	m.ip = ip
	m.tokens = users(t)
	return m
}

// hostAddress is a non-loopback IPv4 address of this machine.
func hostAddress(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	t.Skip("no non-loopback IPv4 address: the API server refuses loopback endpoints for its service proxy")
	return ""
}

func publish(t *testing.T, srv *server.Server, web debugfixture.Config) {
	t.Helper()
	for node, cfg := range map[string]debugfixture.Config{
		webNode: web, cartNode: debugfixture.New(t, "spiffe://cluster.local/ns/shop/sa/cart"),
		adminNode: debugfixture.New(t, "spiffe://cluster.local/ns/ops/sa/admin"),
	} {
		if _, err := srv.SetProxyResourcesWith(node, cfg.Resources, server.SkipConsistencyCheck()); err != nil {
			t.Fatal(err)
		}
	}
}

// connect dials web (ACKs everything) and cart (NACKs clusters); admin's
// proxy never connects.
func connect(t *testing.T, addr string) {
	t.Helper()
	web := xdsclient.DialSotW(t, addr, webNode)
	cart := xdsclient.DialSotW(t, addr, cartNode)
	cart.Reject(resourcev3.ClusterType, nackText)
	for _, c := range []*xdsclient.SotW{web, cart} {
		c.Watch(t, resourcev3.ListenerType)
		c.Watch(t, resourcev3.ClusterType)
		c.Watch(t, resourcev3.RouteType, debugfixture.Route)
		c.Watch(t, resourcev3.EndpointType, debugfixture.Cluster)
		c.Watch(t, resourcev3.SecretType, debugfixture.Cert, debugfixture.Root)
	}
}

// operatorClient impersonates the operator's ServiceAccount with the
// generated RBAC (config/rbac) installed: the reviews must pass with it.
func operatorClient(t *testing.T) client.Client {
	t.Helper()
	base, err := rbac.Base(env.RepoRoot)
	if err != nil {
		t.Fatal(err)
	}
	ensureNamespace(t, operatorNS)
	objs, err := rbac.Install(context.Background(), env.Client, base, operatorNS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rbac.Uninstall(context.Background(), env.Client, objs) })
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: rbac.ServiceAccountUser(operatorNS, base.ServiceAccounts[0].Name)}
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ensureNamespace(t *testing.T, name string) {
	t.Helper()
	err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// expose writes the debug Service as config/manager ships it, the
// operator's Pod with ip in its status, and the EndpointSlice a cluster's
// controller would derive from them.
func expose(t *testing.T, operatorNS, ip, port string) {
	t.Helper()
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app.kubernetes.io/name": "capstan", "app.kubernetes.io/component": "manager"}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNS, Name: debugapi.ServiceName},
		Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{
			Name: debugapi.PortName, Port: debugapi.Port, TargetPort: intstr.FromString("debug"), Protocol: corev1.ProtocolTCP,
		}}}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNS, Name: operatorPod, Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "manager", Image: "capstan-manager",
			Ports: []corev1.ContainerPort{{Name: "debug", ContainerPort: int32(p)}}}}}}
	createAll(t, svc, pod)
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}
	if err := env.Client.Status().Update(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: operatorNS, Name: debugapi.ServiceName + "-1",
			Labels: map[string]string{discoveryv1.LabelServiceName: debugapi.ServiceName}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: operatorNS, Name: operatorPod, UID: pod.UID}}},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To(debugapi.PortName), Port: ptr.To(int32(p)), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	createAll(t, slice)
}

func createAll(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := env.Client.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), o) })
	}
}

// users makes ServiceAccounts standing for people and returns their tokens:
//   - viewer: both shipped roles (config/rbac/debug-reader), cluster-wide;
//   - shop-dev: capstan-proxy-reader in namespace shop only, and the service proxy;
//   - no-proxies: the service proxy, not the proxies resource;
//   - outsider: the proxies resource, not the service proxy.
func users(t *testing.T) map[string]string {
	t.Helper()
	roles, err := rbac.Load(filepath.Join(env.RepoRoot, "config", "rbac", "debug-reader"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := rbac.Install(context.Background(), env.Client, roles, operatorNS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rbac.Uninstall(context.Background(), env.Client, objs) })
	for _, ns := range []string{usersNS, "shop", "ops"} {
		ensureNamespace(t, ns)
	}
	tokens := map[string]string{}
	for _, name := range []string{"viewer", "shop-dev", "no-proxies", "outsider"} {
		tokens[name] = serviceAccountToken(t, name)
	}
	sa := func(name string) []rbacv1.Subject {
		return []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: usersNS, Name: name}}
	}
	reader := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "capstan-proxy-reader"}
	proxy := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "capstan-debug-proxy"}
	createAll(t,
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "debug-test-viewer"}, RoleRef: reader, Subjects: sa("viewer")},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "debug-test-outsider"}, RoleRef: reader, Subjects: sa("outsider")},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop-dev"}, RoleRef: reader, Subjects: sa("shop-dev")},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNS, Name: "debug-test-proxy"}, RoleRef: proxy,
			Subjects: append(append(sa("viewer"), sa("shop-dev")...), sa("no-proxies")...)},
	)
	return tokens
}

func serviceAccountToken(t *testing.T, name string) string {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: usersNS, Name: name}}
	if err := env.Client.Create(context.Background(), sa); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	tr := &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(3600))}}
	if err := env.Client.SubResource("token").Create(context.Background(), sa, tr); err != nil {
		t.Fatalf("requesting a token for %s: %v", name, err)
	}
	return tr.Status.Token
}

// kubeconfigWithToken is a kubeconfig for the test API server that
// authenticates with token, as a user's kubeconfig for a real cluster does.
func kubeconfigWithToken(t *testing.T, token string) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["envtest"] = &clientcmdapi.Cluster{Server: env.Config.Host, CertificateAuthorityData: env.Config.CAData}
	cfg.AuthInfos["user"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "user", Namespace: "shop"}
	cfg.CurrentContext = "envtest"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func serve(t *testing.T, addr string, run func(context.Context, net.Listener) error) string {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("serving on %s: %v", addr, err)
		}
	})
	return lis.Addr().String()
}

// servingCert is the debug endpoint's certificate (the operator's comes
// from the mesh CA; the API server's service proxy does not verify it).
func servingCert(t *testing.T) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(3), DNSNames: []string{debugapi.ServiceName + "." + operatorNS + ".svc"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
