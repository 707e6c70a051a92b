package pki

// ProxyRoots tells which roots the connected proxies verify the xDS server
// with: the roots they read at start. The certificate manager asks it
// during a trust transition; the xDS runner answers it from the proxies'
// node metadata (xds/runner.ConnectedRoots).
type ProxyRoots interface {
	// Untrusting returns how many connected proxies are not known to trust
	// every root in fingerprints (RootFingerprints). With no fingerprints
	// (the new roots are not known yet) every connected proxy counts.
	Untrusting(fingerprints []string) int
}
