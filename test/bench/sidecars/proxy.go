package sidecars

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// proxy is one simulated sidecar's view of its config: what it holds per
// type and which names it subscribed to, following Envoy: CDS and LDS
// wildcard, EDS for the EDS clusters, RDS for the listeners' route names,
// SDS for the secrets that clusters and listeners reference.
type proxy struct {
	id    string
	fleet *Fleet

	mu sync.Mutex
	// have maps type URL → name → the resource held.
	have map[string]map[string]*info
	// wanted maps each dependent type → the names subscribed.
	wanted map[string]map[string]bool
	// gotRoots records a first CDS and LDS response.
	gotCDS, gotLDS bool
	completed      bool
	// satisfied is the generation of the last expectation this proxy met.
	satisfied int
	err       error
}

func newProxy(id string, f *Fleet) *proxy {
	p := &proxy{id: id, fleet: f, have: map[string]map[string]*info{}, wanted: map[string]map[string]bool{}}
	for _, t := range append([]string{resource.ClusterType, resource.ListenerType}, dependentTypes...) {
		p.have[t] = map[string]*info{}
	}
	for _, t := range dependentTypes {
		p.wanted[t] = map[string]bool{}
	}
	return p
}

// subChange is a change of one type's subscription.
type subChange struct {
	add, remove []string
}

// apply records a response: updated resources and removed names; replace
// (state of the world) drops every resource of the type not in updated.
// It returns the subscription changes the response causes.
func (p *proxy) apply(typeURL string, updated []*info, removed []string, replace bool) map[string]subChange {
	p.mu.Lock()
	defer p.mu.Unlock()
	held := p.have[typeURL]
	if replace {
		p.have[typeURL] = make(map[string]*info, len(updated))
	}
	for _, in := range updated {
		if held[in.name] == in {
			p.fleet.resent.Add(1)
		}
		p.have[typeURL][in.name] = in
	}
	held = p.have[typeURL]
	for _, n := range removed {
		delete(held, n)
	}
	switch typeURL {
	case resource.ClusterType:
		p.gotCDS = true
	case resource.ListenerType:
		p.gotLDS = true
	default:
		return nil
	}
	return p.resubscribe()
}

// resubscribe recomputes the dependent subscriptions from the clusters and
// listeners held; resources no longer wanted are dropped.
func (p *proxy) resubscribe() map[string]subChange {
	want := p.references()
	changes := map[string]subChange{}
	for _, t := range dependentTypes {
		ch := subChange{add: missingFrom(p.wanted[t], want[t]), remove: missingFrom(want[t], p.wanted[t])}
		for _, n := range ch.remove {
			delete(p.have[t], n)
		}
		if len(ch.add)+len(ch.remove) > 0 {
			changes[t] = ch
		}
		p.wanted[t] = want[t]
	}
	return changes
}

// references are the names of each dependent type that the clusters and
// listeners held reference.
func (p *proxy) references() map[string]map[string]bool {
	want := map[string]map[string]bool{}
	for _, t := range dependentTypes {
		want[t] = map[string]bool{}
	}
	for _, c := range p.have[resource.ClusterType] {
		if c.eds != "" {
			want[resource.EndpointType][c.eds] = true
		}
		for _, s := range c.secrets {
			want[resource.SecretType][s] = true
		}
	}
	for _, l := range p.have[resource.ListenerType] {
		for _, r := range l.routes {
			want[resource.RouteType][r] = true
		}
		for _, s := range l.secrets {
			want[resource.SecretType][s] = true
		}
	}
	return want
}

// missingFrom are the names of b not in a, sorted.
func missingFrom(a, b map[string]bool) []string {
	var out []string
	for n := range b {
		if !a[n] {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// wantedNames is the sorted subscription of a dependent type.
func (p *proxy) wantedNames(typeURL string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Sorted(maps.Keys(p.wanted[typeURL]))
}

// complete reports whether the proxy holds a full config: clusters and
// listeners, and every name they made it subscribe to.
func (p *proxy) complete() bool {
	if !p.gotCDS || !p.gotLDS {
		return false
	}
	for _, t := range dependentTypes {
		for n := range p.wanted[t] {
			if p.have[t][n] == nil {
				return false
			}
		}
	}
	return true
}

// acked runs after the proxy ACKed a response: it records the first time
// the proxy held a complete config and the time it met the current
// expectation.
func (p *proxy) acked(typeURL string, updated []*info, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.completed && p.complete() {
		p.completed = true
		p.fleet.recordComplete(at)
	}
	exp := p.fleet.currentExpectation()
	if exp == nil || p.satisfied >= exp.gen || !exp.metBy(typeURL, updated) {
		return
	}
	p.satisfied = exp.gen
	p.fleet.recordMet(exp, p.id, at)
}

func (p *proxy) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
	}
}

// missing describes what the proxy lacks for a complete config, "" if nothing.
func (p *proxy) missing() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.gotCDS || !p.gotLDS {
		return fmt.Sprintf("no clusters (%t) or no listeners (%t) yet", !p.gotCDS, !p.gotLDS)
	}
	var out []string
	for _, t := range dependentTypes {
		n := 0
		for name := range p.wanted[t] {
			if p.have[t][name] == nil {
				n++
				if n == 1 {
					out = append(out, fmt.Sprintf("%s e.g. %q", t, name))
				}
			}
		}
		if n > 0 {
			out = append(out, fmt.Sprintf("%d of %d missing", n, len(p.wanted[t])))
		}
	}
	return strings.Join(out, "; ")
}
