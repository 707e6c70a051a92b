package handler

import (
	"errors"
	"net/http"
	"runtime"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"gomodules.xyz/jsonpatch/v2"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

func TestOutcome(t *testing.T) {
	patched := admission.Allowed("")
	patched.Patches = []jsonpatch.JsonPatchOperation{{Operation: "add", Path: "/x"}}
	for _, tc := range []struct {
		resp admission.Response
		want string
	}{
		{patched, OutcomeInjected},
		{admission.Allowed("not injected"), OutcomeSkipped},
		{admission.Denied("bad annotation"), OutcomeDenied},
		{admission.Errored(http.StatusBadRequest, errors.New("test")), OutcomeError},
		{admission.Errored(http.StatusInternalServerError, errors.New("test")), OutcomeError},
	} {
		if got := outcome(tc.resp); got != tc.want {
			t.Errorf("outcome(%+v) = %s, want %s", tc.resp.AdmissionResponse, got, tc.want)
		}
	}
}

// injectionCount is how many requests with outcome the histogram has seen.
func injectionCount(t *testing.T, outcome string) uint64 {
	t.Helper()
	return sampleCount(t, injectionDuration, outcome)
}

// cpuCount is how many requests with outcome the CPU histogram has seen.
func cpuCount(t *testing.T, outcome string) uint64 {
	t.Helper()
	return sampleCount(t, injectionCPU, outcome)
}

func sampleCount(t *testing.T, h *prometheus.HistogramVec, outcome string) uint64 {
	t.Helper()
	m := &dto.Metric{}
	if err := h.WithLabelValues(outcome).(prometheus.Histogram).Write(m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

func TestCPUClockCountsWork(t *testing.T) {
	c := startCPUClock()
	x := 0
	for i := range 5_000_000 {
		x ^= i
	}
	used, ok := c.stop()
	if runtime.GOOS != "linux" {
		if ok {
			t.Errorf("CPU clock reported %v on %s", used, runtime.GOOS)
		}
		return
	}
	if !ok || used <= 0 {
		t.Errorf("CPU clock after a busy loop (%d): %v, %v; want a positive time", x, used, ok)
	}
}
