package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Spread is the minimum, median and maximum of one figure over runs.
type Spread struct{ Min, Median, Max float64 }

func spreadOf(vs []float64) (Spread, bool) {
	if len(vs) == 0 {
		return Spread{}, false
	}
	s := slices.Sorted(slices.Values(vs))
	return Spread{Min: s[0], Median: median(s), Max: s[len(s)-1]}, true
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// Point is every run at one number of proxies.
type Point struct {
	Proxies int
	Runs    []*RunResult
}

// finished are the runs that finished.
func (p Point) finished() []*RunResult {
	return slices.DeleteFunc(slices.Clone(p.Runs), func(r *RunResult) bool { return r.DNF != "" })
}

// figure is the spread of f over the runs that measured it: every finished
// run, and the runs that did not finish where f is above zero (what they
// measured before they stopped).
func (p Point) figure(f func(*RunResult) float64) (Spread, bool) {
	var vs []float64
	for _, r := range p.Runs {
		if v := f(r); r.DNF == "" || v > 0 {
			vs = append(vs, v)
		}
	}
	return spreadOf(vs)
}

// change picks a change's result by name; 0 when the change did not reach
// every affected proxy.
func change(name string, f func(ChangeResult) float64) func(*RunResult) float64 {
	return func(r *RunResult) float64 {
		for _, c := range r.Changes {
			if c.Name == name && c.Done == c.Proxies {
				return f(c)
			}
		}
		return 0
	}
}

// column is one column of the table.
type column struct {
	head   string
	f      func(*RunResult) float64
	format func(float64) string
}

func secs(v float64) string  { return fmt.Sprintf("%.3g s", v) }
func mib(v float64) string   { return fmt.Sprintf("%.0f MiB", v/(1<<20)) }
func kib(v float64) string   { return fmt.Sprintf("%.0f KiB", v/(1<<10)) }
func count(v float64) string { return fmt.Sprintf("%.0f", v) }

var columns = []column{
	{"generate", func(r *RunResult) float64 { return r.GenerateSeconds }, secs},
	{"initial p99", func(r *RunResult) float64 { return r.Initial.P99 }, secs},
	{"initial max", func(r *RunResult) float64 { return r.Initial.Max }, secs},
	{"endpoint p50", change("endpoint", func(c ChangeResult) float64 { return c.P50 }), secs},
	{"endpoint p99", change("endpoint", func(c ChangeResult) float64 { return c.P99 }), secs},
	{"endpoint max", change("endpoint", func(c ChangeResult) float64 { return c.Max }), secs},
	{"endpoint bytes", change("endpoint", func(c ChangeResult) float64 { return float64(c.Bytes) }), kib},
	{"endpoint CPU", change("endpoint", func(c ChangeResult) float64 { return c.CPUSeconds }), secs},
	{"weight p50", change("weight", func(c ChangeResult) float64 { return c.P50 }), secs},
	{"weight p99", change("weight", func(c ChangeResult) float64 { return c.P99 }), secs},
	{"weight max", change("weight", func(c ChangeResult) float64 { return c.Max }), secs},
	{"weight bytes", change("weight", func(c ChangeResult) float64 { return float64(c.Bytes) }), kib},
	{"weight CPU", change("weight", func(c ChangeResult) float64 { return c.CPUSeconds }), secs},
	{"service p50", change("service", func(c ChangeResult) float64 { return c.P50 }), secs},
	{"service p99", change("service", func(c ChangeResult) float64 { return c.P99 }), secs},
	{"service max", change("service", func(c ChangeResult) float64 { return c.Max }), secs},
	{"service bytes", change("service", func(c ChangeResult) float64 { return float64(c.Bytes) }), kib},
	{"service CPU", change("service", func(c ChangeResult) float64 { return c.CPUSeconds }), secs},
	{"heap after GC", func(r *RunResult) float64 { return float64(r.HeapBytes) }, mib},
	{"RSS", func(r *RunResult) float64 { return float64(r.RSSBytes) }, mib},
	{"config bytes / proxy", func(r *RunResult) float64 { return r.ConfigBytesPerProxy }, kib},
	{"initial: identical resources resent / proxy", func(r *RunResult) float64 {
		return float64(r.Initial.Resent) / float64(max(r.Proxies, 1))
	}, count},
}

// Table is the results as markdown: one row per figure, one column per
// number of proxies, each cell "median (min–max)" over the runs that
// measured it (see Point.figure).
func Table(points []Point) string {
	var b strings.Builder
	b.WriteString("| figure |")
	for _, p := range points {
		fmt.Fprintf(&b, " N = %d |", p.Proxies)
	}
	b.WriteString("\n| --- |" + strings.Repeat(" --- |", len(points)) + "\n")
	fmt.Fprintf(&b, "| runs finished |")
	for _, p := range points {
		fmt.Fprintf(&b, " %d of %d |", len(p.finished()), len(p.Runs))
	}
	b.WriteString("\n")
	for _, c := range columns {
		fmt.Fprintf(&b, "| %s |", c.head)
		for _, p := range points {
			b.WriteString(" " + cell(p, c) + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}

func cell(p Point, c column) string {
	s, ok := p.figure(c.f)
	if !ok {
		return "DNF"
	}
	if s.Min == s.Max {
		return c.format(s.Median)
	}
	return fmt.Sprintf("%s (%s–%s)", c.format(s.Median), c.format(s.Min), c.format(s.Max))
}

// DNFs lists why runs did not finish.
func DNFs(points []Point) []string {
	var out []string
	for _, p := range points {
		for i, r := range p.Runs {
			if r.DNF != "" {
				out = append(out, fmt.Sprintf("N = %d, run %d: %s", p.Proxies, i+1, r.DNF))
			}
		}
	}
	return out
}

// Slope is the least-squares slope of the median of f over N (per proxy).
func Slope(points []Point, f func(*RunResult) float64) (float64, bool) {
	var xs, ys []float64
	for _, p := range points {
		if s, ok := p.figure(f); ok {
			xs, ys = append(xs, float64(p.Proxies)), append(ys, s.Median)
		}
	}
	if len(xs) < 2 {
		return 0, false
	}
	var mx, my float64
	for i := range xs {
		mx, my = mx+xs[i], my+ys[i]
	}
	mx, my = mx/float64(len(xs)), my/float64(len(xs))
	var num, den float64
	for i := range xs {
		num += (xs[i] - mx) * (ys[i] - my)
		den += (xs[i] - mx) * (xs[i] - mx)
	}
	return num / den, den > 0
}

// series is one line of a plot: median with min–max error bars.
type series struct {
	name  string
	f     func(*RunResult) float64
	scale float64
}

// plotSeries draws the series against N into a PNG file.
// A log scale shows latencies from milliseconds to minutes.
func plotSeries(path, title, ylabel string, logScale bool, points []Point, ss []series) error {
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = title, "connected proxies (N)", ylabel
	p.X.Min = 0
	if logScale {
		p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
	} else {
		p.Y.Min = 0
	}
	p.Add(plotter.NewGrid())
	drawn := 0
	for i, s := range ss {
		var xys plotter.XYs
		var errs plotter.YErrors
		for _, pt := range points {
			if sp, ok := pt.figure(s.f); ok && (!logScale || sp.Min > 0) {
				xys = append(xys, plotter.XY{X: float64(pt.Proxies), Y: sp.Median / s.scale})
				errs = append(errs, struct{ Low, High float64 }{(sp.Median - sp.Min) / s.scale, (sp.Max - sp.Median) / s.scale})
			}
		}
		if len(xys) == 0 {
			continue
		}
		if err := addLine(p, i, s.name, xys, errs); err != nil {
			return err
		}
		drawn++
	}
	if drawn == 0 {
		// Nothing finished: no plot rather than an empty one.
		return nil
	}
	p.Legend.Top, p.Legend.Left = true, true
	if err := p.Save(16*vg.Centimeter, 10*vg.Centimeter, path); err != nil {
		return fmt.Errorf("saving %s: %w", path, err)
	}
	return nil
}

func addLine(p *plot.Plot, i int, name string, xys plotter.XYs, errs plotter.YErrors) error {
	line, pts, err := plotter.NewLinePoints(xys)
	if err != nil {
		return fmt.Errorf("plotting %s: %w", name, err)
	}
	line.Color, pts.Color = plotutil.Color(i), plotutil.Color(i)
	pts.Shape = plotutil.Shape(i)
	bars, err := plotter.NewYErrorBars(struct {
		plotter.XYer
		plotter.YErrorer
	}{xys, errs})
	if err != nil {
		return fmt.Errorf("plotting %s's spread: %w", name, err)
	}
	bars.Color = plotutil.Color(i)
	p.Add(line, pts, bars)
	p.Legend.Add(name, line, pts)
	return nil
}

// WritePlots writes convergence<variant>.png and memory<variant>.png into dir.
func WritePlots(dir, variant string, points []Point) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	conv := []series{
		{"initial config, p99", func(r *RunResult) float64 { return r.Initial.P99 }, 1},
		{"endpoint change, p99", change("endpoint", func(c ChangeResult) float64 { return c.P99 }), 1},
		{"weight change, p99", change("weight", func(c ChangeResult) float64 { return c.P99 }), 1},
		{"new service, p99", change("service", func(c ChangeResult) float64 { return c.P99 }), 1},
	}
	if err := plotSeries(filepath.Join(dir, "convergence"+variant+".png"), "Convergence (median, min–max of runs)", "seconds (log scale)", true, points, conv); err != nil {
		return err
	}
	mem := []series{
		{"heap after GC", func(r *RunResult) float64 { return float64(r.HeapBytes) }, 1 << 20},
		{"RSS", func(r *RunResult) float64 { return float64(r.RSSBytes) }, 1 << 20},
	}
	return plotSeries(filepath.Join(dir, "memory"+variant+".png"), "Control-plane memory (median, min–max of runs)", "MiB", false, points, mem)
}
