package runner

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/go-logr/logr"

	"github.com/capstanmesh/capstan/pki"
	"github.com/capstanmesh/capstan/xds/generate"
	"github.com/capstanmesh/capstan/xds/ir"
)

// SecretSource issues the workload credentials that go into proxies'
// snapshots as the SDS secrets (certificates.Manager implements
// it). All methods are safe for concurrent use and never block on issuance.
type SecretSource interface {
	// SetWanted says which identities (SPIFFE IDs) have at least one
	// connected proxy: exactly those get certificates.
	SetWanted(identities []string)
	// Credential returns the current credential of an identity.
	Credential(identity string) (*pki.Credential, bool)
	// OnChange registers f, called with an identity whenever its credential
	// (certificate or bundle) changed. Call it before the source starts.
	OnChange(f func(identity string))
}

// Connections tells whether a node has open xDS streams; *server.Server
// implements it.
type Connections interface {
	OpenStreams(nodeID string) int
}

// secretPublisher sits between the proxy table and the server: it adds each
// sidecar's own identity's SDS secrets to the resources the table
// publishes, republishes a node when its identity's credential changes
// (only the secret type's version changes then), and tells the source which
// identities have connected proxies.
//
// A sidecar whose config references the secrets (generate.NeedsSecrets) is
// held, not published, until its identity has a credential: Envoy would
// otherwise keep its TLS listeners and clusters warming on an SDS name
// nobody answers. A proxy without config stays uninitialised instead, which
// its readiness probe reports; config without TLS is published at once.
type secretPublisher struct {
	next  Publisher
	src   SecretSource
	conns Connections
	log   logr.Logger

	// mu guards identities and res, and serialises publishing.
	mu sync.Mutex
	// identities maps node ID to SPIFFE ID, for sidecars of the latest
	// mesh; idsVersion counts its changes.
	identities map[string]string
	idsVersion uint64
	// res is the latest generated config of each node, without secrets.
	res map[string]map[string][]types.Resource
	// secrets are the SDS messages of each identity's current credential,
	// shared by its sidecars so that the server hashes them once.
	secrets map[string]identitySecrets

	// connMu guards connected, dirty, wanted and wantedFrom.
	connMu    sync.Mutex
	connected map[string]bool
	dirty     map[string]bool
	wanted    []string
	// wantedFrom is the idsVersion wanted was computed from.
	wantedFrom uint64
	wake       chan struct{}
}

func newSecretPublisher(next Publisher, src SecretSource, conns Connections, log logr.Logger) *secretPublisher {
	p := &secretPublisher{
		next: next, src: src, conns: conns, log: log,
		identities: map[string]string{},
		res:        map[string]map[string][]types.Resource{},
		secrets:    map[string]identitySecrets{},
		connected:  map[string]bool{},
		dirty:      map[string]bool{},
		wake:       make(chan struct{}, 1),
	}
	src.OnChange(p.credentialChanged)
	return p
}

// setProxies records the identity of every sidecar of the new mesh.
func (p *secretPublisher) setProxies(proxies []*ir.Proxy) {
	ids := make(map[string]string, len(proxies))
	for _, px := range proxies {
		if px.Kind == ir.ProxySidecar && px.Identity != "" {
			ids[px.ID] = px.Identity
		}
	}
	p.mu.Lock()
	if !maps.Equal(ids, p.identities) {
		p.idsVersion++
	}
	p.identities = ids
	p.dropUnusedSecrets()
	p.mu.Unlock()
	p.signal()
}

// SetProxyResources implements Publisher.
func (p *secretPublisher) SetProxyResources(nodeID string, res map[string][]types.Resource) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.res[nodeID] = res
	return p.publishLocked(nodeID)
}

// RemoveProxy implements Publisher.
func (p *secretPublisher) RemoveProxy(nodeID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.res, nodeID)
	p.next.RemoveProxy(nodeID)
}

// publishLocked publishes a node's latest config with its identity's
// secrets, or holds it (see secretPublisher). p.mu is held.
func (p *secretPublisher) publishLocked(nodeID string) (bool, error) {
	res := p.res[nodeID]
	if res == nil {
		return false, nil
	}
	id := p.identities[nodeID]
	cred, ok := p.src.Credential(id)
	if id == "" || !ok {
		if id != "" && generate.NeedsSecrets(res) {
			p.log.V(1).Info("holding xDS config until the workload certificate is issued", "nodeID", nodeID, "identity", id)
			return false, nil
		}
		return p.next.SetProxyResources(nodeID, res)
	}
	secrets, err := p.secretsOf(id, cred)
	if err != nil {
		return false, fmt.Errorf("SDS secrets of %s: %w", id, err)
	}
	withSecrets := maps.Clone(res)
	withSecrets[resource.SecretType] = secrets
	return p.next.SetProxyResources(nodeID, withSecrets)
}

// dropUnusedSecrets forgets the secrets of identities no sidecar has. p.mu is held.
func (p *secretPublisher) dropUnusedSecrets() {
	used := make(map[string]bool, len(p.secrets))
	for _, id := range p.identities {
		used[id] = true
	}
	for id := range p.secrets {
		if !used[id] {
			delete(p.secrets, id)
		}
	}
}

// identitySecrets are the SDS messages made from one credential.
type identitySecrets struct {
	cred *pki.Credential
	res  []types.Resource
}

// secretsOf returns the SDS messages of an identity's credential, made once
// per credential. p.mu is held.
func (p *secretPublisher) secretsOf(id string, cred *pki.Credential) ([]types.Resource, error) {
	if s, ok := p.secrets[id]; ok && s.cred == cred {
		return s.res, nil
	}
	res, err := secretResources(cred)
	if err != nil {
		return nil, err
	}
	p.secrets[id] = identitySecrets{cred: cred, res: res}
	return res, nil
}

func secretResources(cred *pki.Credential) ([]types.Resource, error) {
	keyPEM, err := cred.Key.PEM()
	if err != nil {
		return nil, err
	}
	secrets, err := generate.Secrets(generate.IdentitySecrets{ChainPEM: cred.Cert.ChainPEM, KeyPEM: keyPEM, BundlePEM: cred.BundlePEM})
	if err != nil {
		return nil, err
	}
	out := make([]types.Resource, len(secrets))
	for i, s := range secrets {
		out[i] = s
	}
	return out, nil
}

// credentialChanged republishes every node of an identity.
func (p *secretPublisher) credentialChanged(identity string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, nodeID := range slices.Sorted(maps.Keys(p.res)) {
		if p.identities[nodeID] != identity {
			continue
		}
		if _, err := p.publishLocked(nodeID); err != nil {
			p.log.Error(err, "publishing new SDS secrets failed; the proxy keeps its current ones", "nodeID", nodeID)
		}
	}
}

// nodeChanged notes that a node's streams may have opened or closed; it
// never blocks (it runs on xDS stream goroutines).
func (p *secretPublisher) nodeChanged(nodeID string) {
	p.connMu.Lock()
	p.dirty[nodeID] = true
	p.connMu.Unlock()
	p.signal()
}

func (p *secretPublisher) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// run keeps the wanted identities up to date until ctx is done.
func (p *secretPublisher) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
			p.refreshWanted()
		}
	}
}

// refreshWanted re-reads the connection state of dirty nodes and hands the
// identities of connected nodes to the source when they changed.
func (p *secretPublisher) refreshWanted() {
	connChanged := p.refreshConnected()
	p.mu.Lock()
	ids, version := p.identities, p.idsVersion
	p.mu.Unlock()
	p.connMu.Lock()
	if !connChanged && version == p.wantedFrom && p.wanted != nil {
		// An ACK or a NACK: the same nodes are connected, with the same identities.
		p.connMu.Unlock()
		return
	}
	set := map[string]bool{}
	for nodeID := range p.connected {
		if id := ids[nodeID]; id != "" {
			set[id] = true
		}
	}
	wanted := slices.Sorted(maps.Keys(set))
	changed := !slices.Equal(wanted, p.wanted)
	p.wanted, p.wantedFrom = wanted, version
	p.connMu.Unlock()
	if changed {
		p.src.SetWanted(wanted)
	}
}

// refreshConnected re-reads the connection state of dirty nodes and
// reports whether a node connected or left.
func (p *secretPublisher) refreshConnected() bool {
	p.connMu.Lock()
	dirty := p.dirty
	p.dirty = map[string]bool{}
	p.connMu.Unlock()
	changed := false
	for nodeID := range dirty {
		open := p.conns.OpenStreams(nodeID) > 0
		p.connMu.Lock()
		if open != p.connected[nodeID] {
			changed = true
		}
		if open {
			p.connected[nodeID] = true
		} else {
			delete(p.connected, nodeID)
		}
		p.connMu.Unlock()
	}
	return changed
}
