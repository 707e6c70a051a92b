package certificates

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/capstanmesh/capstan/pki/builtin"
)

// The built-in CA's Secret by name, in the operator's namespace only (a
// Role); create cannot be restricted by name.
// +kubebuilder:rbac:groups="",namespace=capstan-system,resources=secrets,resourceNames=capstan-builtin-ca,verbs=get;update
// +kubebuilder:rbac:groups="",namespace=capstan-system,resources=secrets,verbs=create

// Keys of the built-in CA's Secret.
const (
	RootSecretCertKey = "ca.crt"
	RootSecretKeyKey  = "ca.key"
	// DefaultRootSecretName is the built-in CA's Secret in the operator's namespace.
	DefaultRootSecretName = "capstan-builtin-ca"
)

// SecretRootStore is the built-in CA's builtin.RootStore: one Secret in the
// operator's namespace holding the roots (ca.crt) and their keys (ca.key).
// The first Save creates the Secret, so that of two replicas starting
// together only one creates a root; later Saves update the Secret version
// last loaded or saved, so a concurrent change is refused, not overwritten.
type SecretRootStore struct {
	// Client creates and updates the Secret.
	Client client.Client
	// Reader reads it; use the manager's API reader (the cache may not
	// watch Secrets). Client when nil.
	Reader    client.Reader
	Namespace string
	// Name of the Secret; DefaultRootSecretName when empty.
	Name string

	mu              sync.Mutex
	resourceVersion string
}

var _ builtin.RootStore = (*SecretRootStore)(nil)

func (s *SecretRootStore) key() client.ObjectKey {
	name := s.Name
	if name == "" {
		name = DefaultRootSecretName
	}
	return client.ObjectKey{Namespace: s.Namespace, Name: name}
}

// Load implements builtin.RootStore. A Secret without both keys is an error:
// the CA must not replace what it cannot read.
func (s *SecretRootStore) Load(ctx context.Context) ([]byte, []byte, bool, error) {
	reader := s.Reader
	if reader == nil {
		reader = s.Client
	}
	var sec corev1.Secret
	if err := reader.Get(ctx, s.key(), &sec); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil, false, nil
		}
		return nil, nil, false, fmt.Errorf("reading Secret %s: %w", s.key(), err)
	}
	certPEM, keyPEM := sec.Data[RootSecretCertKey], sec.Data[RootSecretKeyKey]
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return nil, nil, false, fmt.Errorf("secret %s lacks %s or %s", s.key(), RootSecretCertKey, RootSecretKeyKey)
	}
	s.mu.Lock()
	s.resourceVersion = sec.ResourceVersion
	s.mu.Unlock()
	return bytes.Clone(certPEM), bytes.Clone(keyPEM), true, nil
}

// Save implements builtin.RootStore: Create when nothing was loaded or saved
// yet (AlreadyExists if another replica was first), Update otherwise.
func (s *SecretRootStore) Save(ctx context.Context, certPEM, keyPEM []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := s.key()
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: key.Namespace, Name: key.Name, ResourceVersion: s.resourceVersion,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "capstan", "app.kubernetes.io/component": "root-ca"},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{RootSecretCertKey: bytes.Clone(certPEM), RootSecretKeyKey: bytes.Clone(keyPEM)},
	}
	var err error
	if s.resourceVersion == "" {
		err = s.Client.Create(ctx, sec)
	} else {
		err = s.Client.Update(ctx, sec)
	}
	if err != nil {
		if apierrors.IsAlreadyExists(err) || apierrors.IsConflict(err) {
			return fmt.Errorf("secret %s was changed by someone else: %w", key, err)
		}
		return fmt.Errorf("saving Secret %s: %w", key, err)
	}
	s.resourceVersion = sec.ResourceVersion
	return nil
}

// errNoNamespace is returned when the operator's namespace is unknown.
var errNoNamespace = errors.New("the operator's namespace is not set")
