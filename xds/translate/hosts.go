package translate

import (
	"github.com/capstanmesh/capstan/xds/ir"
)

// lookupHost resolves host from namespace ns; the service is nil when no
// Service has that FQDN.
func (t *translator) lookupHost(host, ns string) (*ir.Service, string) {
	fqdn := ir.ResolveHost(host, ns)
	if e := t.byFQDN[fqdn]; e != nil {
		return e.ir, fqdn
	}
	return nil, fqdn
}
