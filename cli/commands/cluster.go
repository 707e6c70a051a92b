package commands

import (
	"fmt"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// cluster is a connection to the API server.
type cluster struct {
	config    *rest.Config
	client    client.Client
	discovery discovery.DiscoveryInterface
	// namespace is -n, or the context's namespace.
	namespace string
}

// newScheme holds the client-go kinds, CRDs and Capstan's API.
func newScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, meshv1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("building the scheme: %w", err)
		}
	}
	return s, nil
}

// kubeconfig loads the user's kubeconfig with client-go's standard rules.
func (o *Options) kubeconfig() clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.Kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: o.Context}
	if o.Namespace != "" {
		overrides.Context.Namespace = o.Namespace
	}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
}

// connect returns the connection to the cluster, made on first use.
func (o *Options) connect() (*cluster, error) {
	if o.cluster != nil {
		return o.cluster, nil
	}
	cc := o.kubeconfig()
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading the kubeconfig: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, fmt.Errorf("reading the namespace from the kubeconfig: %w", err)
	}
	scheme, err := newScheme()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("creating a client: %w", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating a discovery client: %w", err)
	}
	o.cluster = &cluster{config: cfg, client: c, discovery: dc, namespace: ns}
	return o.cluster, nil
}

// namespaceOrDefault is -n, else the context's namespace, else "default",
// without connecting.
func (o *Options) namespaceOrDefault() string {
	if o.Namespace != "" {
		return o.Namespace
	}
	if ns, _, err := o.kubeconfig().Namespace(); err == nil && ns != "" {
		return ns
	}
	return "default"
}
