// Package handler serves Capstan's admission webhooks from the manager's
// webhook server: the Pod mutating webhook that adds the sidecar (a thin
// layer over webhook/inject) and the validating webhooks of the mesh CRDs,
// for the checks CEL cannot express. The decisions are pure functions; the
// handlers only read the cluster through the manager's client.
//
// config/webhook/manifests.yaml is generated from the markers below by
// `make manifests`; config/webhook/kustomization.yaml adds the selectors the
// markers cannot express. See docs/injection.md, "Admission webhook and
// failurePolicy".
package handler

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/api/validation"
	"github.com/capstanmesh/capstan/webhook/inject"
)

// Paths the webhooks are served at.
const (
	PathMutatePod                  = "/mutate-v1-pod"
	PathValidateMeshRoute          = "/validate-mesh-capstan-dev-v1alpha1-meshroute"
	PathValidateDestinationPolicy  = "/validate-mesh-capstan-dev-v1alpha1-destinationpolicy"
	PathValidatePeerAuthentication = "/validate-mesh-capstan-dev-v1alpha1-peerauthentication"
	PathValidateMesh               = "/validate-mesh-capstan-dev-v1alpha1-mesh"
)

// The markers generate config/webhook/manifests.yaml. The namespace and
// object selectors are added by config/webhook/kustomization.yaml.
//
// inject.capstan.dev is called for pods in namespaces labelled
// capstan.dev/inject=enabled (except pods labelled capstan.dev/inject=false);
// inject-pod.capstan.dev for pods labelled capstan.dev/inject=true in other
// namespaces.
//
// +kubebuilder:webhook:path=/mutate-v1-pod,mutating=true,failurePolicy=fail,sideEffects=None,admissionReviewVersions=v1,groups="",resources=pods,verbs=create,versions=v1,name=inject.capstan.dev,timeoutSeconds=10,reinvocationPolicy=Never
// +kubebuilder:webhook:path=/mutate-v1-pod,mutating=true,failurePolicy=fail,sideEffects=None,admissionReviewVersions=v1,groups="",resources=pods,verbs=create,versions=v1,name=inject-pod.capstan.dev,timeoutSeconds=10,reinvocationPolicy=Never
// +kubebuilder:webhook:path=/validate-mesh-capstan-dev-v1alpha1-meshroute,mutating=false,failurePolicy=fail,sideEffects=None,admissionReviewVersions=v1,groups=mesh.capstan.dev,resources=meshroutes,verbs=create;update,versions=v1alpha1,name=meshroute.validate.capstan.dev,timeoutSeconds=10
// +kubebuilder:webhook:path=/validate-mesh-capstan-dev-v1alpha1-destinationpolicy,mutating=false,failurePolicy=fail,sideEffects=None,admissionReviewVersions=v1,groups=mesh.capstan.dev,resources=destinationpolicies,verbs=create;update,versions=v1alpha1,name=destinationpolicy.validate.capstan.dev,timeoutSeconds=10
// +kubebuilder:webhook:path=/validate-mesh-capstan-dev-v1alpha1-peerauthentication,mutating=false,failurePolicy=fail,sideEffects=None,admissionReviewVersions=v1,groups=mesh.capstan.dev,resources=peerauthentications,verbs=create;update,versions=v1alpha1,name=peerauthentication.validate.capstan.dev,timeoutSeconds=10
// +kubebuilder:webhook:path=/validate-mesh-capstan-dev-v1alpha1-mesh,mutating=false,failurePolicy=fail,sideEffects=None,admissionReviewVersions=v1,groups=mesh.capstan.dev,resources=meshes,verbs=create;update,versions=v1alpha1,name=mesh.validate.capstan.dev,timeoutSeconds=10

// The handlers read Namespaces, the Mesh and DestinationPolicies.
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=mesh.capstan.dev,resources=meshes;destinationpolicies,verbs=get;list;watch

// Options configure the webhooks.
type Options struct {
	// Inject holds the injector's settings that do not come from the Mesh
	// (operator namespace, version, xDS address, images).
	Inject inject.Options
}

// SetupWebhooks registers every Capstan webhook on mgr's webhook server
// (configure its host, port and certificates with ctrl.Options.WebhookServer;
// the default is port 9443 with certificates in
// $TMPDIR/k8s-webhook-server/serving-certs).
func SetupWebhooks(mgr ctrl.Manager, opts Options) error {
	scheme := mgr.GetScheme()
	for _, obj := range []runtime.Object{&corev1.Pod{}, &meshv1alpha1.Mesh{}, &meshv1alpha1.MeshRoute{}} {
		if _, _, err := scheme.ObjectKinds(obj); err != nil {
			return fmt.Errorf("setting up the webhooks: the manager's scheme lacks a kind: %w", err)
		}
	}
	srv := mgr.GetWebhookServer()
	srv.Register(PathMutatePod, &webhook.Admission{Handler: &PodInjector{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Options:   opts.Inject,
		Decoder:   admission.NewDecoder(scheme),
	}})
	for path, wh := range validatingWebhooks(scheme, mgr.GetClient()) {
		srv.Register(path, wh)
	}
	return nil
}

// validatingWebhooks are the validating webhooks by path; reader lists
// DestinationPolicies for the MeshRoute webhook's subset warnings.
func validatingWebhooks(scheme *runtime.Scheme, reader client.Reader) map[string]*admission.Webhook {
	return map[string]*admission.Webhook{
		PathValidateMeshRoute:         admission.WithValidator[*meshv1alpha1.MeshRoute](scheme, &MeshRouteValidator{Client: reader}),
		PathValidateDestinationPolicy: admission.WithValidator[*meshv1alpha1.DestinationPolicy](scheme, DestinationPolicyValidator{}),
		PathValidatePeerAuthentication: admission.WithValidator[*meshv1alpha1.PeerAuthentication](scheme,
			ruleValidator[*meshv1alpha1.PeerAuthentication]{KindPeerAuthentication, validation.PeerAuthentication}),
		PathValidateMesh: admission.WithValidator[*meshv1alpha1.Mesh](scheme, ruleValidator[*meshv1alpha1.Mesh]{KindMesh, meshProblems}),
	}
}
