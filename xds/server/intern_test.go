package server

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
)

const otherNode = "sidecar~10.0.0.8~other-0.default~default.svc.cluster.local"

// Messages shared by two proxies are validated and hashed once and get the
// same versions; an equal copy is hashed again, but versioned the same.
func TestSharedMessagesAreHashedOnce(t *testing.T) {
	s := New(Options{})
	res := sidecarConfig(t, edsCluster("a", time.Second), edsCluster("b", time.Second))
	distinct := uint64(countResources(res))
	if _, err := s.SetProxyResources(testNode, res); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetProxyResources(otherNode, res); err != nil {
		t.Fatal(err)
	}
	if got := s.ResourcesHashed(); got != distinct {
		t.Errorf("%d resources hashed for two proxies sharing %d messages, want %d", got, distinct, distinct)
	}
	a, b := s.mustVersions(t, testNode), s.mustVersions(t, otherNode)
	if !a.equal(b) {
		t.Error("proxies with the same messages got different versions")
	}

	copied := map[string][]types.Resource{}
	for typeURL, list := range res {
		for _, r := range list {
			copied[typeURL] = append(copied[typeURL], proto.Clone(r))
		}
	}
	if _, err := s.SetProxyResources(otherNode, copied); err != nil {
		t.Fatal(err)
	}
	if got := s.ResourcesHashed(); got != 2*distinct {
		t.Errorf("%d resources hashed after equal copies, want %d", got, 2*distinct)
	}
	if !a.equal(s.mustVersions(t, otherNode)) {
		t.Error("equal copies got other versions")
	}
}

// A message changed in place after publishing is not noticed (the contract
// is that published messages are not modified), but a new message with the
// same name is validated: an invalid one is refused.
func TestNewMessageIsValidatedAgain(t *testing.T) {
	s := New(Options{})
	res := sidecarConfig(t, edsCluster("a", time.Second))
	if _, err := s.SetProxyResources(testNode, res); err != nil {
		t.Fatal(err)
	}
	bad := edsCluster("a", time.Second)
	bad.ConnectTimeout.Seconds = -1
	res[resourcev3.ClusterType] = []types.Resource{bad}
	if _, err := s.SetProxyResources(testNode, res); err == nil {
		t.Fatal("an invalid new message was accepted")
	}
}

// Entries go once no snapshot references their message.
func TestInternEntriesDropWithTheirMessages(t *testing.T) {
	s := New(Options{})
	if _, err := s.SetProxyResources(testNode, sidecarConfig(t, edsCluster("a", time.Second))); err != nil {
		t.Fatal(err)
	}
	if s.interned.size() == 0 {
		t.Fatal("nothing interned")
	}
	s.RemoveProxy(testNode)
	deadline := time.Now().Add(20 * time.Second)
	for s.interned.size() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d entries left after their messages were released", s.interned.size())
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

func countResources(res map[string][]types.Resource) int {
	n := 0
	for _, list := range res {
		n += len(list)
	}
	return n
}

func (s *Server) mustVersions(t *testing.T, node string) configVersions {
	t.Helper()
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := s.configs[node]
	if c == nil {
		t.Fatalf("no config for %s", node)
	}
	return c.current
}

// Proxies published at the same time that share new messages wait for one
// check of each message rather than each hashing it.
func TestConcurrentPublishesHashSharedMessagesOnce(t *testing.T) {
	s := New(Options{})
	res := sidecarConfig(t, edsCluster("a", time.Second), edsCluster("b", time.Second))
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			node := fmt.Sprintf("sidecar~10.0.1.%d~app-%d.default~default.svc.cluster.local", i+1, i)
			if _, err := s.SetProxyResources(node, res); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got, want := s.ResourcesHashed(), uint64(countResources(res)); got != want {
		t.Errorf("%d resources hashed by 16 concurrent publishes of %d shared messages, want %d", got, want, want)
	}
}

// Proxies holding the same list of messages share its versions and cache
// resources; the list is dropped when no configuration holds it any more.
func TestSameListsShareVersionsUntilReleased(t *testing.T) {
	s := New(Options{})
	res := sidecarConfig(t, edsCluster("a", time.Second))
	for _, node := range []string{testNode, otherNode} {
		if _, err := s.SetProxyResources(node, res); err != nil {
			t.Fatal(err)
		}
	}
	a, b := s.mustVersions(t, testNode), s.mustVersions(t, otherNode)
	for _, typeURL := range []string{resourcev3.ClusterType, resourcev3.EndpointType} {
		if a[typeURL].shared == nil || a[typeURL].shared != b[typeURL].shared {
			t.Errorf("%s: proxies with the same messages do not share their versions", typeURL)
		}
	}
	held := s.interned.types.len()
	if held == 0 {
		t.Fatal("no shared lists held")
	}
	s.RemoveProxy(testNode)
	if s.interned.types.len() != held {
		t.Errorf("%d lists held after one of two proxies left, want %d", s.interned.types.len(), held)
	}
	s.RemoveProxy(otherNode)
	if n := s.interned.types.len(); n != 0 {
		t.Errorf("%d lists held after every proxy left, want 0", n)
	}
}
