// Package ir is Capstan's typed mesh model: services with ports and endpoints,
// routes, destination policies, mTLS modes and proxies. It is produced by
// xds/translate and consumed by xds/generate. It imports no client-go,
// controller-runtime or Envoy packages; YAML (JSON) tags let golden files show it.
package ir
