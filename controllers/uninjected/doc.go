// Package uninjected reports running pods that lack the current sidecar
// (they predate injection, or carry another version) or opted out of
// capture, on the Mesh status and in Events, and restarts their workloads
// one at a time when the Mesh asks for it and the operator may.
package uninjected
