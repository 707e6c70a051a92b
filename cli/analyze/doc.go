// Package analyze holds capstanctl's analyzers: pure functions from a
// snapshot of cluster objects (Inputs, read from the API server or from YAML
// files) to findings, each with a stable code, a severity, the objects
// involved and the fix. Nothing here talks to the API server; the commands
// in cli/commands gather the inputs.
//
// The codes are stable: a code is never reused for another problem.
//
//	CAP001 pods in an injection-enabled namespace without the sidecar (seed failure 1)
//	CAP002 a STRICT workload called by workloads without the sidecar (seed failure 2)
//	CAP003 a weighted MeshRoute whose pods are reachable around the mesh (seed failure 3)
//	CAP004 outlier detection that can eject the whole pool (seed failure 4)
//	CAP005 a MeshRoute naming a host that is no Service
//	CAP006 a MeshRoute naming a subset no DestinationPolicy defines
//	CAP007 a DestinationPolicy subset that matches no pod
//	CAP008 a MeshRoute that loses a host to an older one
//	CAP009 Gateway API objects whose CRD version Capstan does not support
//	CAP010 live: a STRICT workload whose sidecars refused plaintext connections (seed failure 2, now)
//	CAP011 live: a workload that would be STRICT-blocked: it receives plaintext requests (seed failure 2, before)
//	CAP012 live: the share of a weighted route's traffic that bypassed the mesh (seed failure 3)
//
// The live findings need Inputs.Traffic, the sidecars' counters over a
// window, which the CLI samples; offline they never appear.
package analyze
