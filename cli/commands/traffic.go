package commands

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/cli/analyze"
	"github.com/capstanmesh/capstan/webhook/inject"
)

// The sidecar stats the live analyzers read: inbound requests (and TCP
// connections) by how they came, and the inbound listener's failed TLS
// handshakes.
const (
	statHTTPRequests    = "envoy_http_downstream_rq_total"
	statTCPConnections  = "envoy_tcp_downstream_cx_total"
	statTLSErrors       = "envoy_listener_ssl_connection_error"
	labelListener       = "envoy_listener_address"
	inboundListenerAddr = "0.0.0.0_15006"
)

// sampleTraffic reads the pods' sidecar stats through the API server's pod
// proxy, twice, window apart, and returns what changed. A pod that cannot
// be read (gone, not ready, or the user may not get pods/proxy) is left
// out and noted.
func sampleTraffic(ctx context.Context, c *cluster, pods []string, window time.Duration) (*analyze.Traffic, []string, error) {
	cs, err := kubernetes.NewForConfig(c.config)
	if err != nil {
		return nil, nil, fmt.Errorf("creating a clientset: %w", err)
	}
	var unread unreadPods
	before := map[string]analyze.PodTraffic{}
	for _, p := range pods {
		t, err := readPodTraffic(ctx, cs, p)
		if err != nil {
			if apierrors.IsForbidden(err) {
				return nil, []string{"not allowed to get pods/proxy: no live evidence (CAP010-CAP012)"}, nil
			}
			unread.add(p, err)
			continue
		}
		before[p] = t
	}
	if len(before) == 0 {
		return nil, unread.notes(), nil
	}
	select {
	case <-ctx.Done():
		return nil, unread.notes(), fmt.Errorf("sampling traffic: %w", ctx.Err())
	case <-time.After(window):
	}
	out := &analyze.Traffic{Window: window, Pods: map[string]analyze.PodTraffic{}}
	for p, b := range before {
		a, err := readPodTraffic(ctx, cs, p)
		if err != nil {
			unread.add(p, err)
			continue
		}
		out.Pods[p] = difference(a, b)
	}
	return out, unread.notes(), nil
}

// unreadPods are the pods whose stats could not be read, noted once.
type unreadPods struct {
	n     int
	first string
}

func (u *unreadPods) add(pod string, err error) {
	if u.n == 0 {
		u.first = fmt.Sprintf("%s: %v", pod, err)
	}
	u.n++
}

func (u *unreadPods) notes() []string {
	if u.n == 0 {
		return nil
	}
	return []string{fmt.Sprintf("could not read the sidecar stats of %d pod(s), so they have no live evidence (first, %s)", u.n, u.first)}
}

// difference is what was counted between b and a; a restarted sidecar's
// counters start again, so a decrease counts from zero.
func difference(a, b analyze.PodTraffic) analyze.PodTraffic {
	d := func(x, y float64) float64 {
		if x < y {
			return x
		}
		return x - y
	}
	return analyze.PodTraffic{Mesh: d(a.Mesh, b.Mesh), Plaintext: d(a.Plaintext, b.Plaintext), AppTLS: d(a.AppTLS, b.AppTLS),
		FailedHandshakes: d(a.FailedHandshakes, b.FailedHandshakes)}
}

func readPodTraffic(ctx context.Context, cs kubernetes.Interface, pod string) (analyze.PodTraffic, error) {
	ns, name, _ := strings.Cut(pod, "/")
	body, err := cs.CoreV1().Pods(ns).ProxyGet("http", name, strconv.Itoa(meshv1alpha1.PortStats), "/stats/prometheus", nil).DoRaw(ctx)
	if err != nil {
		return analyze.PodTraffic{}, fmt.Errorf("reading /stats/prometheus: %w", err)
	}
	return parsePodTraffic(body)
}

// parsePodTraffic reads the live analyzers' counters from a sidecar's
// Prometheus text.
func parsePodTraffic(body []byte) (analyze.PodTraffic, error) {
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return analyze.PodTraffic{}, fmt.Errorf("parsing the sidecar stats: %w", err)
	}
	var t analyze.PodTraffic
	for _, name := range []string{statHTTPRequests, statTCPConnections} {
		for _, m := range families[name].GetMetric() {
			switch label(m, inject.TagConnectionSecurity) {
			case "mtls":
				t.Mesh += m.GetCounter().GetValue()
			case "plaintext":
				t.Plaintext += m.GetCounter().GetValue()
			case "tls":
				t.AppTLS += m.GetCounter().GetValue()
			}
		}
	}
	for _, m := range families[statTLSErrors].GetMetric() {
		if label(m, labelListener) == inboundListenerAddr {
			t.FailedHandshakes += m.GetCounter().GetValue()
		}
	}
	return t, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
