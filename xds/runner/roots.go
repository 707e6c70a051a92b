package runner

import (
	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/pki"
	"github.com/capstanmesh/capstan/xds/server"
)

// ProxyStatuses lists what the xDS server knows of each node; *server.Server
// implements it.
type ProxyStatuses interface {
	ProxyStatuses() []server.ProxyStatus
}

// ConnectedRoots is the certificate manager's pki.ProxyRoots: a
// connected proxy trusts the roots it reported at start in its node
// metadata (meshv1alpha1.NodeMetaRoots, the fingerprints the injector has
// the proxy read from the root CA ConfigMap together with the bundle). A
// proxy that reports none, or something else, is not known to trust any.
type ConnectedRoots struct {
	Statuses ProxyStatuses
}

var _ pki.ProxyRoots = ConnectedRoots{}

// Untrusting implements pki.ProxyRoots.
func (c ConnectedRoots) Untrusting(fingerprints []string) int {
	n := 0
	for _, st := range c.Statuses.ProxyStatuses() {
		if st.Streams == 0 {
			continue
		}
		have := pki.SplitFingerprints(st.Metadata[meshv1alpha1.NodeMetaRoots])
		if len(fingerprints) == 0 || have == nil || !pki.CoversFingerprints(have, fingerprints) {
			n++
		}
	}
	return n
}
