package server

import (
	"strings"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/go-logr/logr/funcr"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
)

// TestHugeNACKsDoNotFloodTheLog: a proxy NACKs with a 900 KB error_detail,
// again and again. Each logged line stays short, only a few lines are
// logged, and the status keeps a bounded message.
func TestHugeNACKsDoNotFloodTheLog(t *testing.T) {
	e := startAuthServer(t, defaultAuth(), defaultPods(), 0)
	if _, err := e.SetProxyResources(testNode, sidecarConfig(t, edsCluster("c1", time.Second))); err != nil {
		t.Fatal(err)
	}
	d := e.deltaStream(t, "authorization", "Bearer "+goodToken)
	d.send(&discoveryv3.DeltaDiscoveryRequest{Node: xdsNode(testNode), TypeUrl: resourcev3.ClusterType})
	resp := d.recv()
	huge := strings.Repeat("envoy says no ", 900_000/14)
	const nacks = 30
	for range nacks {
		d.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.ClusterType, ResponseNonce: resp.GetNonce(),
			ErrorDetail: &rpcstatus.Status{Code: 3, Message: huge}})
	}
	// The last NACK is recorded (the stream handles requests in order).
	eventually(t, "the NACKs recorded", func() bool {
		st, ok := e.ProxyStatus(testNode)
		return ok && st.Types[resourcev3.ClusterType].Nacked && strings.Count(e.logs.String(), "proxy rejected config") >= 1
	})
	// One more ACK-less request after the NACKs proves they were all read.
	d.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.ClusterType, ResponseNonce: resp.GetNonce()})
	eventually(t, "the ACK after the NACKs", func() bool {
		st, _ := e.ProxyStatus(testNode)
		return !st.Types[resourcev3.ClusterType].Nacked
	})

	st, _ := e.ProxyStatus(testNode)
	if n := len(st.Types[resourcev3.ClusterType].LastNack.Message); n > MaxNackMessage+32 {
		t.Errorf("the status keeps a NACK message of %d bytes, want at most %d", n, MaxNackMessage)
	}
	logs := e.logs.String()
	lines := 0
	for _, line := range strings.Split(logs, "\n") {
		if len(line) > 4<<10 {
			t.Errorf("a log line of %d bytes: %.200s...", len(line), line)
		}
		if strings.Contains(line, "proxy rejected config") {
			lines++
		}
	}
	if lines > logBurst || lines == 0 {
		t.Errorf("%d NACKs logged %d lines, want 1 to %d", nacks, lines, logBurst)
	}
	if len(logs) > 64<<10 {
		t.Errorf("%d NACKs of %d bytes produced %d bytes of logs", nacks, len(huge), len(logs))
	}
}

func TestLogLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newLogLimiter()
	l.now = func() time.Time { return now }
	for i := range logBurst {
		if !l.allow("k") {
			t.Fatalf("line %d of the burst refused", i)
		}
	}
	if l.allow("k") {
		t.Fatal("line past the burst allowed")
	}
	if !l.allow("other") {
		t.Fatal("another key is limited too")
	}
	l.allow("k") // suppressed again
	now = now.Add(logInterval)
	if ok, suppressed := l.allowN("k"); !ok || suppressed != 2 {
		t.Fatalf("after an interval: %v, %d suppressed, want true, 2", ok, suppressed)
	}
	for i := range maxLogKeys + 10 {
		l.allow(strings.Repeat("x", i%7) + string(rune(i)))
		if len(l.keys) > maxLogKeys {
			t.Fatalf("%d keys, max %d", len(l.keys), maxLogKeys)
		}
	}
	if got := truncate(strings.Repeat("é", 1000)); len(got) > maxLoggedValue+20 || !strings.HasSuffix(got, "(truncated)") {
		t.Errorf("truncate: %d bytes %q", len(got), got[len(got)-20:])
	}
}

// TestControlPlaneLinesAreBounded: go-control-plane's warnings can quote a
// request's resource names; each line is bounded and repeated ones are
// rate-limited.
func TestControlPlaneLinesAreBounded(t *testing.T) {
	logs := &syncBuffer{}
	l := cpLogger{log: funcr.New(logs.write, funcr.Options{}), limit: newLogLimiter()}
	names := strings.Repeat("a-resource-name ", 100_000)
	for range 20 {
		l.Warnf("ADS mode: not responding to request %s %v: %v", resourcev3.ClusterType, names, "missing")
		l.Errorf("failed to send a response for %s%v to nodeID %q: %s", resourcev3.ClusterType, names, "n", "x")
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) > 2*logBurst {
		t.Errorf("%d lines for 40 messages, want at most %d", len(lines), 2*logBurst)
	}
	for _, line := range lines {
		if len(line) > maxCPLine+256 {
			t.Errorf("a line of %d bytes", len(line))
		}
	}
}
