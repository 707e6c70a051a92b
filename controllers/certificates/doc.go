// Package certificates issues and renews workload and serving certificates:
// the Manager (issuing engine, renewal schedule, trust transition when the
// CA changes), its Mesh reconciler and configuration, and the Secret that
// stores the built-in CA's root. The CA providers themselves are in pki
// (built-in) and pki/certmanager.
package certificates
