// Package inject adds Capstan's Envoy sidecar and traffic-capture init
// container to Pods. It is pure: ShouldInject decides, Inject returns a
// mutated deep copy and never changes its input, and both are deterministic
// byte for byte. The admission handler that calls them lives beside this
// package; docs/injection.md describes what is injected and why.
package inject
