package runner

import (
	"strings"
	"testing"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/xds/server"
)

type statusList []server.ProxyStatus

func (s statusList) ProxyStatuses() []server.ProxyStatus { return s }

func TestConnectedRootsUntrusting(t *testing.T) {
	oldFP, newFP := strings.Repeat("a", 64), strings.Repeat("b", 64)
	proxy := func(streams int, roots string) server.ProxyStatus {
		st := server.ProxyStatus{Streams: streams}
		if roots != "" {
			st.Metadata = map[string]string{meshv1alpha1.NodeMetaRoots: roots}
		}
		return st
	}
	c := ConnectedRoots{Statuses: statusList{
		proxy(1, oldFP+","+newFP),
		proxy(1, oldFP),
		proxy(1, "$(CAPSTAN_ROOT_FINGERPRINTS)"), // an older ConfigMap
		proxy(1, ""),                             // no metadata
		proxy(0, oldFP),                          // disconnected
	}}
	if got := c.Untrusting([]string{newFP}); got != 3 {
		t.Errorf("Untrusting(new) = %d, want 3", got)
	}
	if got := c.Untrusting([]string{oldFP}); got != 2 {
		t.Errorf("Untrusting(old) = %d, want 2", got)
	}
	if got := c.Untrusting(nil); got != 4 {
		t.Errorf("Untrusting(unknown roots) = %d, want every connected proxy, 4", got)
	}
}
