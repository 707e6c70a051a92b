package pki

import "time"

// Credential is what a proxy of one identity presents and trusts: its
// current certificate, the certificate's key and the trust bundle. The key
// prints redacted; Key.PEM() is the secret itself.
type Credential struct {
	// Identity is the SPIFFE ID the certificate carries.
	Identity string
	Key      *Key
	Cert     *Certificate
	// BundlePEM holds the roots peers are verified against.
	BundlePEM []byte
	// RenewAt is when the certificate is due for renewal.
	RenewAt time.Time
}
