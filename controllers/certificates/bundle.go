package certificates

import (
	"context"
	"errors"
)

// BundleOf is a certificate manager as the trust bundle source of
// rootca.Publisher and cabundle.Injector: its current trust
// bundle, or an error before it knows one.
func BundleOf(m *Manager) Bundle { return Bundle{m} }

// Bundle is a Manager seen as a trust bundle source.
type Bundle struct{ m *Manager }

// TrustBundle returns the current bundle, or an error before there is one.
func (b Bundle) TrustBundle(context.Context) ([]byte, error) {
	if bundle := b.m.TrustBundle(); len(bundle) > 0 {
		return bundle, nil
	}
	return nil, errors.New("the certificate provider has no trust bundle yet")
}
