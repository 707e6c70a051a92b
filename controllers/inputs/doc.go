// Package inputs gathers what the mesh model is built from (Capstan's
// objects, Services, EndpointSlices, Pods, Namespaces), sorted and
// deep-copied, and hands it to the xDS pipeline on every change.
package inputs
