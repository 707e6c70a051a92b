package pki

import "errors"

// Errors a Provider wraps so that callers can tell the user what to fix.
var (
	// ErrIssuerNotReady: the issuer is missing or not ready to sign.
	ErrIssuerNotReady = errors.New("issuer not ready")
	// ErrRequestDenied: an approver denied the certificate request.
	ErrRequestDenied = errors.New("certificate request denied")
)
