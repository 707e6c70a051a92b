package server

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"
)

// upToDate (the fast path of a watch opened by an ACK) agrees with the
// diffs a response is built from: up to date exactly when they find
// nothing to send or remove, for wildcard and named subscriptions.
func TestUpToDateAgreesWithDiffs(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"a", "b", "c", "d"}
	for i := range 2000 {
		tv := typeVersions{resources: map[string]*discoveryv3.Resource{}}
		returned := map[string]string{}
		var subscribed []string
		for _, n := range names {
			if rng.IntN(3) > 0 {
				tv.resources[n] = &discoveryv3.Resource{Name: n, Version: fmt.Sprint(rng.IntN(2))}
			}
			if rng.IntN(3) > 0 {
				returned[n] = fmt.Sprint(rng.IntN(2))
			}
			if rng.IntN(2) == 0 {
				subscribed = append(subscribed, n)
			}
		}
		wildcard := i%2 == 0
		if wildcard {
			subscribed = nil
		}
		sub := streamv3.NewDeltaSubscription(subscribed, nil, returned, true)
		var updated []*discoveryv3.Resource
		var removed []string
		if sub.IsWildcard() {
			updated, removed, _ = wildcardDiff(sub.ReturnedResources(), tv)
		} else {
			updated, removed, _ = subscribedDiff(sub, tv)
		}
		want := len(updated) == 0 && len(removed) == 0
		if got := upToDate(sub, tv); got != want {
			t.Fatalf("case %d (wildcard %v, subscribed %v, returned %v): upToDate = %v, diffs say %v", i, wildcard, subscribed, sub.ReturnedResources(), got, want)
		}
	}
}

// mergedEquals (the tracker's ACK of a delta response that completes a
// shared list) agrees with building the node's set and comparing it.
func TestMergedEqualsAgreesWithAckedResources(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	names := []string{"a", "b", "c", "d"}
	pick := func() map[string]string {
		m := map[string]string{}
		for _, n := range names {
			if rng.IntN(3) > 0 {
				m[n] = fmt.Sprint(rng.IntN(2))
			}
		}
		return m
	}
	agreed := 0
	for i := range 5000 {
		all, prev, resources := pick(), pick(), pick()
		var removed []string
		for _, n := range names {
			if rng.IntN(4) == 0 { // sometimes a name also in resources
				removed = append(removed, n)
			}
		}
		sent := sentResponse{resources: resources, removed: removed, delta: true}
		want := maps.Equal(all, sent.ackedResources(prev))
		if got := mergedEquals(all, prev, resources, removed); got != want {
			t.Fatalf("case %d: all %v prev %v resources %v removed %v: mergedEquals = %v, want %v", i, all, prev, resources, removed, got, want)
		}
		if want {
			agreed++
		}
	}
	if agreed == 0 {
		t.Fatal("no case where the sets are equal: the test checks nothing")
	}
}
