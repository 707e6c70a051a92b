package main

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// barWidth is the width of the share bars of the TTY view.
const barWidth = 20

// renderTTY writes the compact table of a terminal: the screen cleared,
// one line per destination with a bar for its share, the legacy caller,
// the routes' status columns, and where the logs are.
func renderTTY(w io.Writer, s Snapshot, footer string) error {
	var b strings.Builder
	b.WriteString("\x1b[H\x1b[2J")
	if s.Proxyless {
		fmt.Fprintf(&b, "Capstan playground  %s   (proxyless gRPC fallback: the client's counts, every second)\n\n", s.At.UTC().Format("15:04:05"))
		b.WriteString("frontend (proxyless gRPC) -> reviews, by the server that answered\n")
	} else {
		fmt.Fprintf(&b, "Capstan playground  %s   (Envoy stats of the sidecars, every second)\n\n", s.At.UTC().Format("15:04:05"))
		b.WriteString("frontend -> reviews, as frontend's sidecar measures it\n")
	}
	fmt.Fprintf(&b, "  %-15s %7s %8s %9s %9s  %-*s %5s  %s\n", "DESTINATION", "RPS", "SUCCESS", "P50", "P99", barWidth, "SPLIT", "", "mTLS")
	for _, r := range s.Subsets {
		fmt.Fprintf(&b, "  %-15s %7.1f %8s %9s %9s  %s %4.0f%%  %s\n", r.Name, r.RPS, percent(r.Success),
			millis(r.P50), millis(r.P99), bar(r.Share), r.Share*100, r.MTLS)
	}
	fmt.Fprintf(&b, "  %-15s %7.1f %8s\n\n", s.All.Name, s.All.RPS, percent(s.All.Success))
	if !s.Proxyless {
		b.WriteString("legacy (no sidecar) -> reviews-v1, as reviews' sidecars see it\n")
		fmt.Fprintf(&b, "  plaintext accepted %5.1f/s   refused %5.1f/s\n\n", s.Legacy.Accepted, s.Legacy.Refused)
	}
	fmt.Fprintf(&b, "  %-15s %-9s %-11s %s\n", "MESHROUTE", "ACCEPTED", "PROGRAMMED", "PROXIES")
	for _, r := range s.Routes {
		fmt.Fprintf(&b, "  %-15s %-9s %-11s %s\n", r.Name, r.Accepted, r.Programmed, r.Proxies)
	}
	if footer != "" {
		b.WriteString("\n" + footer)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// renderPlain writes one line per refresh, for logs and pipes.
func renderPlain(w io.Writer, s Snapshot) error {
	var b strings.Builder
	b.WriteString(s.At.UTC().Format("15:04:05"))
	for _, r := range append(append([]Row{}, s.Subsets...), s.All) {
		name := strings.ReplaceAll(r.Name, " ", "-")
		fmt.Fprintf(&b, " | %s rps=%.1f ok=%s", name, r.RPS, percent(r.Success))
		if r.MTLS != "" {
			fmt.Fprintf(&b, " p50=%s p99=%s split=%.0f%% mtls=%s", millis(r.P50), millis(r.P99), r.Share*100, r.MTLS)
		}
	}
	if !s.Proxyless {
		fmt.Fprintf(&b, " | legacy accepted=%.1f/s refused=%.1f/s", s.Legacy.Accepted, s.Legacy.Refused)
	}
	for _, r := range s.Routes {
		fmt.Fprintf(&b, " | meshroute/%s accepted=%s programmed=%s proxies=%s", r.Name, r.Accepted, r.Programmed, r.Proxies)
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// bar is a share as a bar of barWidth cells.
func bar(share float64) string {
	if math.IsNaN(share) || share < 0 {
		share = 0
	}
	full := int(math.Round(math.Min(share, 1) * barWidth))
	return strings.Repeat("█", full) + strings.Repeat("░", barWidth-full)
}

func percent(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", v*100)
}

func millis(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.1fms", v)
}
