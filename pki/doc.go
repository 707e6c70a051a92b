// Package pki is Capstan's certificate model: workload identities (SPIFFE
// IDs), the Provider interface that signs certificates for them, ECDSA P-256
// keys and CSRs generated in the control plane, the renewal schedule, and a
// verification helper.
//
// The control plane owns every private key. For each identity it calls
// NewKeyAndCSR, hands the CSR to a Provider (the built-in CA in
// pki/builtin, or cert-manager, which takes exactly such a CSR), and pushes
// the returned chain with the key over SDS. Keys never leave the process
// except in that SDS secret: Key redacts itself in every fmt verb, in JSON,
// in log/slog and in logr, so logging a Key (or a struct holding one)
// cannot leak it.
//
// This package imports only the standard library.
package pki
