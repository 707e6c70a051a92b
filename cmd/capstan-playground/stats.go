package main

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/capstanmesh/capstan/xds/generate"
)

// The live view's numbers come from the sidecars' own Prometheus
// endpoints (port 15090, /stats/prometheus), as a user's Prometheus would
// scrape them: frontend's outbound clusters per subset, its outbound
// listener for the total, and the reviews sidecars' inbound listener for
// the legacy caller's plaintext connections.

// sample is one line of a Prometheus text exposition.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// parseProm reads the samples of a Prometheus text exposition, skipping
// comments and lines it cannot read.
func parseProm(text string) []sample {
	var out []sample
	for _, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		if s, ok := parseSample(line); ok {
			out = append(out, s)
		}
	}
	return out
}

func parseSample(line string) (sample, bool) {
	s := sample{labels: map[string]string{}}
	rest := line
	if i := strings.IndexAny(line, "{ "); i >= 0 && line[i] == '{' {
		s.name = line[:i]
		end := strings.LastIndexByte(line, '}')
		if end < i {
			return s, false
		}
		parseLabels(line[i+1:end], s.labels)
		rest = line[end+1:]
	} else if i >= 0 {
		s.name, rest = line[:i], line[i:]
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return s, false
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	s.value = v
	return s, err == nil
}

// parseLabels reads name="value" pairs (values with \" and \\ escapes).
func parseLabels(s string, into map[string]string) {
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq < 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			return
		}
		name := strings.TrimSpace(strings.TrimPrefix(s[:eq], ","))
		var b strings.Builder
		i := eq + 2
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			b.WriteByte(s[i])
		}
		into[name] = b.String()
		s = strings.TrimPrefix(s[min(i+1, len(s)):], ",")
	}
}

// counters are the cumulative numbers of one destination.
type counters struct {
	total, errors5xx, handshakes float64
	// buckets are the request time histogram's cumulative buckets (ms).
	buckets map[float64]float64
}

// reading is one scrape of every sidecar the view reads.
type reading struct {
	at time.Time
	// subsets are frontend's outbound clusters by subset ("" for none).
	subsets map[string]*counters
	// all is frontend's outbound listener (every request, faults too).
	all counters
	// plaintext connections the reviews sidecars accepted, and
	// connections they refused (no filter chain matched: not mTLS).
	plaintext, refused float64
}

// subsetCluster is the stat name of frontend's cluster for reviews' subset.
func subsetCluster(subset string) string {
	return generate.StatName(fmt.Sprintf("outbound|%d|%s|reviews.%s.svc.cluster.local", demoPort, subset, demoNamespace))
}

// readFrontend adds frontend's sidecar's samples to r.
func (r *reading) readFrontend(samples []sample) {
	byName := map[string]string{}
	for _, v := range []string{"v1", "v2", ""} {
		byName[subsetCluster(v)] = v
		r.subsets[v] = &counters{buckets: map[float64]float64{}}
	}
	for _, s := range samples {
		if sub, ok := byName[s.labels["envoy_cluster_name"]]; ok {
			addCluster(r.subsets[sub], s)
			continue
		}
		// Envoy's tag extraction cuts a stat prefix with dots
		// ("outbound_0.0.0.0_9080") into the label and the metric's name.
		if strings.HasPrefix(s.labels["envoy_http_conn_manager_prefix"], "outbound_") && strings.HasPrefix(s.name, "envoy_http_") {
			switch {
			case strings.HasSuffix(s.name, "_downstream_rq_total"):
				r.all.total += s.value
			case strings.HasSuffix(s.name, "_downstream_rq_xx") && s.labels["envoy_response_code_class"] == "5":
				r.all.errors5xx += s.value
			}
		}
	}
}

func addCluster(c *counters, s sample) {
	switch s.name {
	case "envoy_cluster_upstream_rq_total":
		c.total += s.value
	case "envoy_cluster_upstream_rq_xx":
		if s.labels["envoy_response_code_class"] == "5" {
			c.errors5xx += s.value
		}
	case "envoy_cluster_ssl_handshake":
		c.handshakes += s.value
	case "envoy_cluster_upstream_rq_time_bucket":
		le, err := strconv.ParseFloat(s.labels["le"], 64)
		if err == nil {
			c.buckets[le] += s.value
		}
	}
}

// inboundListener is the sidecars' inbound listener's stat name.
const inboundListener = "0.0.0.0_15006"

// readServer adds a reviews sidecar's inbound samples to r.
func (r *reading) readServer(samples []sample) {
	for _, s := range samples {
		prefix := s.labels["envoy_http_conn_manager_prefix"]
		switch {
		case s.name == "envoy_http_downstream_cx_total" && strings.HasPrefix(prefix, "inbound_"):
			r.plaintext += s.value
		case s.name == "envoy_http_downstream_cx_ssl_total" && strings.HasPrefix(prefix, "inbound_"):
			r.plaintext -= s.value
		// A plaintext connection to a port that requires mTLS fails its
		// TLS handshake on the inbound listener.
		case s.name == "envoy_listener_ssl_connection_error" && s.labels["envoy_listener_address"] == inboundListener,
			s.name == "envoy_listener_no_filter_chain_match" && s.labels["envoy_listener_address"] == inboundListener:
			r.refused += s.value
		}
	}
}

// Row is one destination in the live view, over the last interval.
type Row struct {
	Name string
	// RPS is requests per second; Success the share not answered 5xx
	// (NaN without requests); P50 and P99 in milliseconds (NaN without).
	RPS, Success, P50, P99 float64
	// Share of frontend's requests to reviews that went here.
	Share float64
	// MTLS: "yes" once the sidecar made TLS handshakes to it, "-" before.
	MTLS string
}

// Legacy is the un-injected caller as the reviews sidecars saw it.
type Legacy struct {
	// Accepted and Refused are plaintext connections per second.
	Accepted, Refused float64
}

// RouteStatus is a MeshRoute's status columns.
type RouteStatus struct {
	Name, Accepted, Programmed string
	Proxies                    string
}

// Snapshot is what one refresh of the view shows.
type Snapshot struct {
	At time.Time
	// Proxyless is set in the fallback: the numbers are the client's.
	Proxyless bool
	Subsets   []Row
	All       Row
	Legacy    Legacy
	Routes    []RouteStatus
}

// diff turns two readings into the rates of the interval between them;
// latencies come from window (an older reading, or prev), because Envoy
// publishes its histograms only at each stats flush (every 5s).
func diff(prev, cur, window *reading) Snapshot {
	dt := cur.at.Sub(prev.at).Seconds()
	snap := Snapshot{At: cur.at}
	if dt <= 0 {
		return snap
	}
	var sum float64
	for _, v := range []string{"v1", "v2"} {
		row := rowOf("reviews "+v, prev.subsets[v], cur.subsets[v], dt)
		if old, now := window.subsets[v], cur.subsets[v]; old != nil && now != nil {
			row.P50 = quantile(0.5, old.buckets, now.buckets)
			row.P99 = quantile(0.99, old.buckets, now.buckets)
		}
		sum += row.RPS
		snap.Subsets = append(snap.Subsets, row)
	}
	for i := range snap.Subsets {
		if sum > 0 {
			snap.Subsets[i].Share = snap.Subsets[i].RPS / sum
		}
	}
	snap.All = rowOf("all (frontend)", &prev.all, &cur.all, dt)
	snap.All.MTLS = ""
	snap.Legacy = Legacy{Accepted: math.Max(0, cur.plaintext-prev.plaintext) / dt,
		Refused: math.Max(0, cur.refused-prev.refused) / dt}
	return snap
}

func rowOf(name string, prev, cur *counters, dt float64) Row {
	row := Row{Name: name, Success: math.NaN(), P50: math.NaN(), P99: math.NaN(), MTLS: "-"}
	if prev == nil || cur == nil {
		return row
	}
	n := cur.total - prev.total
	row.RPS = math.Max(0, n) / dt
	if n > 0 {
		row.Success = 1 - (cur.errors5xx-prev.errors5xx)/n
	}
	if cur.handshakes > 0 {
		row.MTLS = "yes"
	}
	return row
}

// quantile estimates the q-quantile from the interval's bucket counts,
// interpolating linearly inside a bucket (as Prometheus's
// histogram_quantile does); NaN without observations.
func quantile(q float64, prev, cur map[float64]float64) float64 {
	les := make([]float64, 0, len(cur))
	for le := range cur {
		les = append(les, le)
	}
	sort.Float64s(les)
	if len(les) == 0 {
		return math.NaN()
	}
	total := cur[les[len(les)-1]] - prev[les[len(les)-1]]
	if total <= 0 {
		return math.NaN()
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for _, le := range les {
		count := cur[le] - prev[le]
		if count >= rank {
			if math.IsInf(le, 1) {
				return lower
			}
			if count == below {
				return le
			}
			return lower + (le-lower)*(rank-below)/(count-below)
		}
		lower, below = le, count
	}
	return lower
}
