package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// knobs are the scale run's settings, from BENCH_* environment variables.
type knobs struct {
	proxies                                 []int
	services, endpoints, routes, namespaces int
	runs                                    int
	sotw, tls, scoped                       bool
	dependencies                            int
	deadline                                time.Duration
	maxRSS                                  uint64
	profileN                                int
	out                                     string
}

func readKnobs(t *testing.T) knobs {
	t.Helper()
	k := knobs{
		services: envInt(t, "BENCH_SERVICES", 1000), endpoints: envInt(t, "BENCH_ENDPOINTS", 10),
		routes: envInt(t, "BENCH_ROUTES", 10), namespaces: envInt(t, "BENCH_NAMESPACES", 10),
		runs: envInt(t, "BENCH_RUNS", 3), sotw: os.Getenv("BENCH_SOTW") == "1", tls: os.Getenv("BENCH_TLS") == "1",
		scoped: os.Getenv("BENCH_SCOPED") == "1", dependencies: envInt(t, "BENCH_DEPENDENCIES", 5),
		deadline: time.Duration(envInt(t, "BENCH_DEADLINE_S", 300)) * time.Second,
		maxRSS:   uint64(envInt(t, "BENCH_MAX_RSS_MB", 16000)) << 20,
		profileN: envInt(t, "BENCH_PROFILE_N", 1000),
		out:      cmpOr(os.Getenv("BENCH_OUT"), "../../docs"),
	}
	for _, f := range strings.Split(cmpOr(os.Getenv("BENCH_PROXIES"), "100,500,1000"), ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			t.Fatalf("BENCH_PROXIES: %v", err)
		}
		k.proxies = append(k.proxies, n)
	}
	return k
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return n
}

// variant names the mode of a run in the files it writes: "" for the
// mesh-wide default of the harness, "-scoped" with BENCH_SCOPED=1, so
// that the two sets of figures live side by side.
func (k knobs) variant() string {
	if k.scoped {
		return "-scoped"
	}
	return ""
}

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// TestScale is the full measurement (make bench-scale): for each N, BENCH_RUNS
// runs, each in a fresh control-plane process. It writes the table into
// docs/benchmarks.md, the plots and the raw results into docs/benchmarks/.
// Speed is reported, never asserted.
func TestScale(t *testing.T) {
	if os.Getenv("BENCH_SCALE") != "1" {
		t.Skip("the scale run takes minutes: make bench-scale (BENCH_SCALE=1)")
	}
	k := readKnobs(t)
	load0 := loadAverage()
	var points []Point
	gaveUp := false
	for _, n := range k.proxies {
		pt := Point{Proxies: n}
		for run := range k.runs {
			pt.Runs = append(pt.Runs, runOne(t, k, n, run, gaveUp))
		}
		gaveUp = gaveUp || len(pt.finished()) == 0
		points = append(points, pt)
		writeRaw(t, k, points)
	}
	if err := WritePlots(filepath.Join(k.out, "benchmarks"), k.variant(), points); err != nil {
		t.Fatal(err)
	}
	if err := updateDocs(filepath.Join(k.out, "benchmarks.md"), k, section(k, points, load0, loadAverage())); err != nil {
		t.Fatal(err)
	}
}

func runOne(t *testing.T, k knobs, n, run int, gaveUp bool) *RunResult {
	t.Helper()
	mesh := Mesh{Services: k.services, Endpoints: k.endpoints, Namespaces: k.namespaces, Proxies: n, Routes: k.routes,
		Scoped: k.scoped, Dependencies: k.dependencies}
	if gaveUp {
		return &RunResult{Proxies: n, Services: k.services, Endpoints: k.endpoints, DNF: "not attempted: a smaller N did not finish"}
	}
	cfg := IsolatedConfig{Config: Config{Mesh: mesh, SotW: k.sotw, TLS: k.tls, Deadline: k.deadline, SidecarArgs: sidecarArgs}, MaxRSS: k.maxRSS}
	if n == k.profileN && run == 0 {
		cfg.ProfileDir = filepath.Join(k.out, "benchmarks", "profile"+k.variant())
		if err := os.MkdirAll(cfg.ProfileDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	res, err := RunIsolated(t.Context(), cfg, sidecarArgs...)
	if err != nil {
		t.Fatalf("N = %d, run %d: %v", n, run+1, err)
	}
	t.Logf("N = %d, run %d (load %s):", n, run+1, loadAverage())
	logResult(t, res)
	if res.DNF != "" {
		t.Logf("did not finish: %s", res.DNF)
	}
	return res
}

func writeRaw(t *testing.T, k knobs, points []Point) {
	t.Helper()
	b, err := json.MarshalIndent(points, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(k.out, "benchmarks"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(k.out, "benchmarks", "scale-results"+k.variant()+".json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// markers delimit the block a run of the variant rewrites.
func (k knobs) markers() (begin, end string) {
	return "<!-- bench-scale" + k.variant() + ":begin (written by make bench-scale) -->", "<!-- bench-scale" + k.variant() + ":end -->"
}

// heading is the section a run's block is appended under when the
// document has no block of its variant yet.
func (k knobs) heading() string {
	if k.scoped {
		return "## Scale with scoping, the default (`make bench-scale BENCH_SCOPED=1`)"
	}
	return "## Scale: the xDS pipeline with N connected proxies (`make bench-scale`)"
}

func section(k knobs, points []Point, load0, load1 string) string {
	var b strings.Builder
	mode := "delta"
	if k.sotw {
		mode = "state of the world"
	}
	transport := "plaintext"
	if k.tls {
		transport = "TLS"
	}
	fmt.Fprintf(&b, "Run %s UTC; %d CPUs, %s %s/%s; load average (1, 5, 15 min) %s at the start, %s at the end.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04"), runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH, load0, load1)
	fmt.Fprintf(&b, "Mesh: %d services × %d endpoints in %d namespaces, %d MeshRoutes (90/10 between two subsets) with "+
		"DestinationPolicies; N injected pods each with one %s ADS stream over %s (authentication off), SDS served. "+
		"%d runs per N, each in a fresh control-plane process; cells are median (min–max) over the runs that measured the figure (every finished run, and what runs that did not finish measured before they stopped); "+
		"wait deadline %s, control-plane RSS budget %d MiB.\n\n",
		k.services, k.endpoints, k.namespaces, k.routes, mode, transport, k.runs, k.deadline, k.maxRSS>>20)
	if k.scoped {
		fmt.Fprintf(&b, "Scoping: the default mode, `Scoped`: each sidecar holds the services of its own namespace and the first %d services, "+
			"which every injected pod declares in `capstan.dev/dependencies` (service 0, the one the endpoint and weight changes touch, among them).\n\n", k.dependencies)
	}
	b.WriteString(Table(points))
	for _, s := range []struct {
		name string
		f    func(*RunResult) float64
	}{{"heap after GC", func(r *RunResult) float64 { return float64(r.HeapBytes) }}, {"RSS", func(r *RunResult) float64 { return float64(r.RSSBytes) }}} {
		if slope, ok := Slope(points, s.f); ok {
			fmt.Fprintf(&b, "\nSlope of the median %s over N: **%.2f MiB per connected proxy**.\n", s.name, slope/(1<<20))
		}
	}
	if d := DNFs(points); len(d) > 0 {
		b.WriteString("\nDid not finish:\n\n- " + strings.Join(d, "\n- ") + "\n")
	}
	fmt.Fprintf(&b, "\n![convergence vs N](benchmarks/convergence%[1]s.png)\n![memory vs N](benchmarks/memory%[1]s.png)\n", k.variant())
	return b.String()
}

// updateDocs replaces the text between the markers in path (appending a
// section with them when absent).
func updateDocs(path string, k knobs, body string) error {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	doc := string(b)
	beginMarker, endMarker := k.markers()
	block := beginMarker + "\n" + body + endMarker
	i, j := strings.Index(doc, beginMarker), strings.Index(doc, endMarker)
	if i < 0 || j < i {
		doc = strings.TrimRight(doc, "\n") + "\n\n" + k.heading() + "\n\n" + block + "\n"
	} else {
		doc = doc[:i] + block + doc[j+len(endMarker):]
	}
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
