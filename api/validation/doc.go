// Package validation holds every semantic rule of the mesh API that CEL
// cannot express (or that Capstan keeps as a second line behind CEL), for
// MeshRoute, DestinationPolicy, PeerAuthentication and Mesh.
//
// It is the one definition of each rule and of each threshold (for instance
// what "can eject the whole pool" means for outlier detection). Three callers
// apply it, each in its own way, and must agree:
//
//   - admission (webhook/handler) refuses an object with a problem, except a
//     problem the stored object already had, which it admits with a warning;
//   - the status reconcilers (controllers) set Accepted to False, naming
//     every problem;
//   - the translator (xds/translate) leaves out the part of the object each
//     problem is in (a route rule, a subset, a traffic policy's load balancer
//     or outlier detection, a PeerAuthentication) and reports it as Invalid.
//
// Every problem is a *field.Error whose Field is the path of the offending
// field, so that each caller's message names it. Each function is pure: it
// reads one object and never modifies it.
//
// The package imports only the API types, internal/re2 (Envoy's regular
// expression limits), apimachinery's field errors and label syntax, and the
// standard library: no clients, no controller-runtime, no Envoy.
package validation
