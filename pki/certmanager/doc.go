// Package certmanager is the pki.Provider that signs workload certificates
// through cert-manager (CertificateRequests against the Mesh's issuerRef).
// It is the only package outside tests that imports cert-manager's types.
package certmanager
