// Command capstan-playground is `make run` without a cluster: a live mesh
// on one machine. It starts a local etcd and kube-apiserver (bin/k8s), the
// operator as in production (bin/manager: controllers, webhooks, xDS over
// TLS with authenticated streams, the built-in CA), and a demo application
// whose pods are network namespaces with real Envoy sidecars, injected by
// the webhook and redirected by capstan-init: frontend calls reviews v1
// and v2 through the sidecars, legacy (no sidecar) calls reviews directly.
// It then shows, every second, what the sidecars' own Envoy stats say, and
// stops everything it started on Ctrl-C. See docs/run.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	// The proxyless fallback's client resolves xds:/// targets.
	_ "google.golang.org/grpc/xds"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/internal/netpod"
)

// options are the command line's settings.
type options struct {
	// kubeconfig is where the admin kubeconfig is written (removed at the end).
	kubeconfig string
	// logDir gets the operator's and every pod's logs.
	logDir string
	// manager, capstanInit and envoy are the binaries run.
	manager, capstanInit, envoy string
	// refresh is the view's period; refreshes, when > 0, ends the run
	// after that many refreshes (tests, demos in scripts).
	refresh   time.Duration
	refreshes int
	// plain writes one line per refresh even on a terminal.
	plain bool
	// proxyless runs the fallback even where network namespaces work.
	proxyless bool
	// onStarted and onSnapshot, when set, get the started playground and
	// every snapshot shown (tests).
	onStarted  func(*playground)
	onSnapshot func(Snapshot)
}

func main() {
	// The pods' apps are this binary started again inside their namespaces.
	if cfg := os.Getenv(netpod.AppEnv); cfg != "" {
		os.Exit(netpod.RunApp(cfg))
	}
	opts := parseFlags(flag.CommandLine, os.Args[1:])
	// A closed output (| head, a terminal gone) ends the view with an
	// error, and everything is still stopped, instead of killing the process.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, opts, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "playground:", err)
		os.Exit(1)
	}
}

func parseFlags(fs *flag.FlagSet, args []string) options {
	var o options
	envoy := os.Getenv("CAPSTAN_ENVOY")
	if envoy == "" {
		envoy = "bin/envoy-1.40.0"
	}
	fs.StringVar(&o.kubeconfig, "kubeconfig-out", "bin/local/kubeconfig", "where to write the admin kubeconfig")
	fs.StringVar(&o.logDir, "log-dir", "bin/playground", "directory of the operator's and the pods' logs")
	fs.StringVar(&o.manager, "manager", "bin/manager", "the operator binary")
	fs.StringVar(&o.capstanInit, "capstan-init", "bin/capstan-init", "the capstan-init binary")
	fs.StringVar(&o.envoy, "envoy", envoy, "the Envoy binary (default $CAPSTAN_ENVOY or bin/envoy-1.40.0)")
	fs.DurationVar(&o.refresh, "refresh", time.Second, "how often the view is refreshed")
	fs.IntVar(&o.refreshes, "refreshes", 0, "stop after this many refreshes (0: at Ctrl-C)")
	fs.BoolVar(&o.plain, "plain", false, "one line per refresh, even on a terminal")
	fs.BoolVar(&o.proxyless, "proxyless", false,
		"the fallback without network namespaces: proxyless gRPC client and servers, no Envoy (automatic when not root or not Linux)")
	_ = fs.Parse(args) // flag.ExitOnError
	return o
}

// netnsUnavailable says why this machine cannot run the pods, or "".
func netnsUnavailable() string {
	switch {
	case runtime.GOOS != "linux":
		return "the playground's pods are Linux network namespaces, and this is " + runtime.GOOS
	case os.Geteuid() != 0:
		return "the playground's pods are network namespaces on a bridge, which need root (try: sudo make run)"
	}
	return ""
}

// run starts the playground, shows the live view until ctx ends (or
// opts.refreshes), and stops everything it started.
func run(ctx context.Context, opts options, out io.Writer) (err error) {
	if err := absPaths(&opts); err != nil {
		return err
	}
	if err := os.MkdirAll(opts.logDir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", opts.logDir, err)
	}
	say := func(format string, args ...any) { _, _ = fmt.Fprintf(out, format+"\n", args...) }
	if why := netnsUnavailable(); why != "" || opts.proxyless {
		if why == "" {
			why = "-proxyless"
		}
		say("playground: %s: falling back to a proxyless gRPC client and servers on this machine, without Envoy sidecars", why)
		return runProxyless(ctx, opts, out, say)
	}
	pg, err := start(ctx, opts, say)
	if err != nil {
		return err
	}
	defer func() {
		say("playground: stopping")
		err = errors.Join(err, pg.stop())
	}()
	if opts.onStarted != nil {
		opts.onStarted(pg)
	}
	tty := !opts.plain && isTerminal(out)
	footer := tryThis(opts, false)
	if !tty {
		say("%s", footer)
	}
	return pg.watch(ctx, out, tty, footer)
}

// absPaths makes the paths absolute: pods run in other directories, and
// Envoy as another user.
func absPaths(o *options) error {
	for _, p := range []*string{&o.kubeconfig, &o.logDir, &o.manager, &o.capstanInit, &o.envoy} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return fmt.Errorf("resolving %s: %w", *p, err)
		}
		*p = abs
	}
	bins := []string{o.manager}
	if netnsUnavailable() == "" && !o.proxyless {
		bins = append(bins, o.capstanInit, o.envoy)
	}
	for _, bin := range bins {
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("%w (make run builds it)", err)
		}
	}
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// samples are the files of config/samples the footer suggests, with what
// each shows.
var samples = []struct{ file, shows string }{
	{"canary-50.yaml", "half of frontend's calls go to v2"},
	{"canary-100.yaml", "all of them go to v2"},
	{"fault.yaml", "frontend's sidecar answers 503 to 20% of calls: all's success drops"},
	{"retry.yaml", "the 50/50 split with a timeout and retries"},
	{"outlier.yaml", "outlier detection on reviews' subsets"},
	{"strict-mtls.yaml", "only mTLS: the legacy caller is refused"},
}

// tryThis is the commands to try while the playground runs; without
// sidecars, the STRICT sample has no one to enforce it.
func tryThis(o options, proxyless bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Try, in another terminal:\n  export KUBECONFIG=%s\n", o.kubeconfig)
	for _, s := range samples {
		if proxyless && s.file == "strict-mtls.yaml" {
			continue
		}
		fmt.Fprintf(&b, "  bin/k8s/kubectl apply -f config/samples/%-17s # %s\n", s.file, s.shows)
	}
	b.WriteString("  bin/k8s/kubectl get meshroutes -n demo\n  bin/capstanctl analyze -n demo\n")
	fmt.Fprintf(&b, "Logs: %s (operator.log, <pod>.envoy.log, <pod>.app.log). Ctrl-C stops everything.\n", o.logDir)
	return b.String()
}

// latencyWindow is how far back p50 and p99 look: two of Envoy's stats
// flushes (5s each), so that one has always happened.
const latencyWindow = 11 * time.Second

// runProxyless is run's fallback: the same view, from the client's counts.
func runProxyless(ctx context.Context, opts options, out io.Writer, say func(string, ...any)) (err error) {
	px, err := startProxyless(ctx, opts, say)
	if err != nil {
		return err
	}
	defer func() {
		say("playground: stopping")
		err = errors.Join(err, px.stop())
	}()
	tty := !opts.plain && isTerminal(out)
	footer := tryThis(opts, true)
	if !tty {
		say("%s", footer)
	}
	prev := px.read()
	tick := time.NewTicker(opts.refresh)
	defer tick.Stop()
	for n := 0; opts.refreshes == 0 || n < opts.refreshes; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		cur := px.read()
		snap := proxylessSnapshot(prev, cur)
		prev = cur
		snap.Routes = routesOf(ctx, px.env.Client)
		if err := render(out, snap, tty, footer); err != nil {
			return err
		}
		if opts.onSnapshot != nil {
			opts.onSnapshot(snap)
		}
	}
	return nil
}

func render(out io.Writer, snap Snapshot, tty bool, footer string) error {
	if tty {
		return renderTTY(out, snap, footer)
	}
	return renderPlain(out, snap)
}

// watch refreshes the view every opts.refresh until ctx ends or
// opts.refreshes have been shown.
func (pg *playground) watch(ctx context.Context, out io.Writer, tty bool, footer string) error {
	prev, err := pg.read(ctx)
	if err != nil {
		return err
	}
	// history holds the readings of the latency window, oldest first.
	history := []*reading{prev}
	tick := time.NewTicker(pg.opts.refresh)
	defer tick.Stop()
	for n := 0; pg.opts.refreshes == 0 || n < pg.opts.refreshes; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		cur, err := pg.read(ctx)
		if err != nil {
			if _, err := fmt.Fprintf(out, "reading the sidecars' stats: %v\n", err); err != nil {
				return err
			}
			continue
		}
		for len(history) > 1 && cur.at.Sub(history[0].at) > latencyWindow {
			history = history[1:]
		}
		snap := diff(prev, cur, history[0])
		prev = cur
		history = append(history, cur)
		snap.Routes = routesOf(ctx, pg.env.Client)
		if err := render(out, snap, tty, footer); err != nil {
			return err
		}
		if pg.opts.onSnapshot != nil {
			pg.opts.onSnapshot(snap)
		}
	}
	return nil
}

// read scrapes frontend's and the reviews pods' sidecars.
func (pg *playground) read(ctx context.Context) (*reading, error) {
	r := &reading{at: time.Now(), subsets: map[string]*counters{}}
	text, err := pg.scrape(ctx, "frontend")
	if err != nil {
		return nil, err
	}
	r.readFrontend(parseProm(text))
	for _, name := range []string{"reviews-v1", "reviews-v2"} {
		text, err := pg.scrape(ctx, name)
		if err != nil {
			return nil, err
		}
		r.readServer(parseProm(text))
	}
	return r, nil
}

// scrape GETs a pod's sidecar's Prometheus stats, as Prometheus would.
func (pg *playground) scrape(ctx context.Context, pod string) (string, error) {
	p := pg.pods[pod]
	url := "http://" + p.netns.IP.String() + ":" + strconv.Itoa(meshv1alpha1.PortStats) + "/stats/prometheus"
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("stats of %s: %w", pod, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("stats of %s: %w", pod, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("stats of %s: %d %w", pod, resp.StatusCode, err)
	}
	return string(body), nil
}

// routesOf reads the demo's MeshRoutes' status columns.
func routesOf(ctx context.Context, c client.Client) []RouteStatus {
	var list meshv1alpha1.MeshRouteList
	if err := c.List(ctx, &list, client.InNamespace(demoNamespace)); err != nil {
		return []RouteStatus{{Name: "(" + err.Error() + ")"}}
	}
	out := make([]RouteStatus, 0, len(list.Items))
	for _, r := range list.Items {
		st := RouteStatus{Name: r.Name, Accepted: "-", Programmed: "-", Proxies: "-"}
		if r.Status.Proxies != nil {
			st.Proxies = r.Status.Proxies.Summary
		}
		if c := meta.FindStatusCondition(r.Status.Conditions, "Accepted"); c != nil {
			st.Accepted = string(c.Status)
		}
		if c := meta.FindStatusCondition(r.Status.Conditions, "Programmed"); c != nil {
			st.Programmed = string(c.Status)
		}
		out = append(out, st)
	}
	return out
}
