package server

import (
	"fmt"
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
