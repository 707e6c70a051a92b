// Package runner is the pipeline between the controllers and the xDS server:
// it coalesces input snapshots, translates them once, generates config only for
// proxies whose inputs changed, publishes it, and hands statuses back.
package runner

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/go-logr/logr"

	"github.com/capstanmesh/capstan/internal/meshmetrics"
	"github.com/capstanmesh/capstan/xds/translate"
)

// Publisher serves generated config; *server.Server implements it.
type Publisher interface {
	SetProxyResources(nodeID string, res map[string][]types.Resource) (bool, error)
	RemoveProxy(nodeID string)
}

// StatusSink writes object statuses back to the API. proxies is the number of
// proxies that acknowledged their current config.
type StatusSink interface {
	WriteStatuses(ctx context.Context, statuses []translate.ObjectStatus, proxies int32) error
}

// SyncCounter counts proxies that acknowledged every resource type they are served.
type SyncCounter interface {
	InSyncProxies() int
}

// ConvergenceTracker is told, after each push, when the change behind it
// was observed and which nodes' config it changed; *server.Server
// implements it (TrackConvergence) and measures the time until they ACK.
type ConvergenceTracker interface {
	TrackConvergence(observed time.Time, nodes []string)
}

// Options configure a Runner.
type Options struct {
	Logger    logr.Logger
	Publisher Publisher
	Statuses  StatusSink
	Sync      SyncCounter
	// Acks, when set, gives per-object proxy counts and NACKs in statuses.
	Acks AckSource
	// Debounce is the quiet period before a push; MaxDelay bounds the wait.
	Debounce time.Duration
	MaxDelay time.Duration
	// Secrets, when set, issues the workload certificates that go into each
	// sidecar's snapshot as SDS secrets (see secretPublisher); Connections
	// (required with it) says which nodes have open streams.
	Secrets     SecretSource
	Connections Connections
	// Convergence, when set, is told of every push that changed some
	// node's config.
	Convergence ConvergenceTracker
}

// Runner runs the pipeline. Push is safe to call from any goroutine.
type Runner struct {
	opts     Options
	log      logr.Logger
	inputs   *Coalescer[*translate.Inputs]
	acks     *Coalescer[struct{}]
	proxies  *proxyTable
	statuses *statusTable
	acked    *ackTable
	// publisher is Options.Publisher, behind secrets when that is set.
	publisher Publisher
	secrets   *secretPublisher
	// noticesKey hashes the translation notices logged last.
	noticesKey string
	// observed is when the first input not yet pushed arrived (Unix
	// nanoseconds, 0 when none waits): when the change was observed.
	observed atomic.Int64
}

// New returns a Runner; call Start to run it.
func New(opts Options) *Runner {
	if opts.Debounce <= 0 {
		opts.Debounce = 100 * time.Millisecond
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = time.Second
	}
	log := opts.Logger
	if log.GetSink() == nil {
		log = logr.Discard()
	}
	r := &Runner{
		opts:      opts,
		log:       log,
		inputs:    NewCoalescer[*translate.Inputs](opts.Debounce, opts.MaxDelay),
		acks:      NewCoalescer[struct{}](opts.Debounce, opts.MaxDelay),
		proxies:   newProxyTable(),
		statuses:  &statusTable{},
		acked:     newAckTable(),
		publisher: opts.Publisher,
	}
	if opts.Secrets != nil {
		r.secrets = newSecretPublisher(opts.Publisher, opts.Secrets, opts.Connections, log.WithName("secrets"))
		r.publisher = r.secrets
	}
	return r
}

// Push hands on a new snapshot of the inputs; it never blocks.
func (r *Runner) Push(in *translate.Inputs) {
	r.observed.CompareAndSwap(0, time.Now().UnixNano())
	r.inputs.Push(in)
}

// ProxyStatusChanged tells the runner that a proxy ACKed, NACKed, connected or
// left, so that the proxy counts in statuses are refreshed; it never blocks.
func (r *Runner) ProxyStatusChanged(nodeID string) {
	r.acks.Push(struct{}{})
	if r.secrets != nil {
		r.secrets.nodeChanged(nodeID)
	}
}

// Start runs the pipeline until ctx is done (a controller-runtime Runnable).
func (r *Runner) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { r.acks.Run(ctx, func(ctx context.Context, _ struct{}) { r.writeStatuses(ctx) }) })
	if r.secrets != nil {
		wg.Go(func() { r.secrets.run(ctx) })
	}
	r.inputs.Run(ctx, r.push)
	wg.Wait()
	return nil
}

// push translates, generates, publishes and records statuses for one snapshot.
func (r *Runner) push(ctx context.Context, in *translate.Inputs) {
	start := time.Now()
	observed := start
	if ns := r.observed.Swap(0); ns != 0 {
		observed = time.Unix(0, ns)
	}
	res, err := translate.TranslateSince(r.proxies.mesh, in)
	meshmetrics.ObserveTranslation(time.Since(start))
	if err != nil {
		r.log.Error(err, "translation failed; proxies keep the config they have")
		return
	}
	if r.secrets != nil {
		r.secrets.setProxies(res.Mesh.Proxies)
	}
	r.logNotices(res.Notices)
	start = time.Now()
	genErrs := r.proxies.apply(res.Mesh, res.Changes, r.publisher, r.log)
	meshmetrics.ObserveGeneration(time.Since(start), r.proxies.lastGenerated)
	if r.opts.Convergence != nil && len(r.proxies.lastChanged) > 0 {
		r.opts.Convergence.TrackConvergence(observed, r.proxies.lastChanged)
	}
	r.acked.setCarried(res)
	r.statuses.set(withProgrammed(res.Statuses, genErrs))
	r.writeStatuses(ctx)
}

// logNotices logs what translation left out because of objects without a
// status of their own (bad capstan.dev/dependencies entries on namespaces,
// Services past the per-namespace cluster bound), each time the set changes.
func (r *Runner) logNotices(notices []translate.Notice) {
	key := hashJSON(notices)
	if key == r.noticesKey {
		return
	}
	r.noticesKey = key
	for _, n := range notices {
		r.log.Info("left out of the mesh config", "kind", n.Ref.Kind, "namespace", n.Ref.Namespace, "name", n.Ref.Name, "reason", n.Message)
	}
}

func (r *Runner) writeStatuses(ctx context.Context) {
	statuses, ok := r.statuses.get()
	if !ok || r.opts.Statuses == nil {
		return
	}
	var proxies int32
	if r.opts.Sync != nil {
		proxies = int32(r.opts.Sync.InSyncProxies())
	}
	if r.opts.Acks != nil {
		statuses = withProxyCounts(statuses, r.acked.count(r.opts.Acks.ProxyAcks()))
	}
	if err := r.opts.Statuses.WriteStatuses(ctx, statuses, proxies); err != nil && ctx.Err() == nil {
		r.log.Error(err, "writing statuses failed; retrying on the next change")
	}
}
