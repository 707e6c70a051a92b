package pki

import (
	"math"
	"testing"
	"time"
)

func TestRenewAt(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	c := func(v float64) func() float64 { return func() float64 { return v } }
	for _, tc := range []struct {
		name     string
		nb, na   time.Time
		fraction float64
		jitter   func() float64
		want     time.Time
	}{
		{"half, no jitter", t0, t0.Add(day), 0.5, nil, t0.Add(12 * time.Hour)},
		{"half, centred jitter", t0, t0.Add(day), 0.5, c(0.5), t0.Add(12 * time.Hour)},
		{"half, jitter min", t0, t0.Add(day), 0.5, c(0), t0.Add(day * 4 / 10)},
		{"half, jitter max", t0, t0.Add(day), 0.5, c(1), t0.Add(day * 6 / 10)},
		{"0.8, jitter max", t0, t0.Add(10 * time.Hour), 0.8, c(1), t0.Add(9 * time.Hour)},
		{"0.3, jitter min", t0, t0.Add(10 * time.Hour), 0.3, c(0), t0.Add(2 * time.Hour)},
		{"jitter above 1 clamped", t0, t0.Add(10 * time.Hour), 0.5, c(7), t0.Add(6 * time.Hour)},
		{"jitter below 0 clamped", t0, t0.Add(10 * time.Hour), 0.5, c(-3), t0.Add(4 * time.Hour)},
		{"jitter NaN centred", t0, t0.Add(10 * time.Hour), 0.5, c(math.NaN()), t0.Add(5 * time.Hour)},
		{"fraction 0 means default", t0, t0.Add(10 * time.Hour), 0, nil, t0.Add(5 * time.Hour)},
		{"fraction 1 means default", t0, t0.Add(10 * time.Hour), 1, nil, t0.Add(5 * time.Hour)},
		{"fraction NaN means default", t0, t0.Add(10 * time.Hour), math.NaN(), nil, t0.Add(5 * time.Hour)},
		{"fraction 0.95 + jitter clamped to 95%", t0, t0.Add(100 * time.Minute), 0.95, c(1), t0.Add(95 * time.Minute)},
		{"fraction 0.02 - jitter clamped to 5%", t0, t0.Add(100 * time.Minute), 0.02, c(0), t0.Add(5 * time.Minute)},
		{"empty life: now", t0, t0, 0.5, nil, t0},
		{"inverted life: now", t0.Add(time.Hour), t0, 0.5, nil, t0.Add(time.Hour)},
		{"backdated notBefore, 10m TTL", t0.Add(-time.Minute), t0.Add(10 * time.Minute), 0.5, nil, t0.Add(4*time.Minute + 30*time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := RenewAt(tc.nb, tc.na, tc.fraction, tc.jitter)
			if !got.Equal(tc.want) {
				t.Errorf("RenewAt = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestRenewAtBounds: for the API's fractions and any jitter, the renewal is
// strictly inside the validity period, within ±10% of life of the fraction.
func TestRenewAtBounds(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, life := range []time.Duration{10 * time.Minute, 24 * time.Hour, 720 * time.Hour} {
		for f := 0.3; f <= 0.8001; f += 0.05 {
			for j := 0.0; j <= 1.0001; j += 0.125 {
				got := RenewAt(t0, t0.Add(life), f, func() float64 { return j })
				if !got.After(t0) || !got.Before(t0.Add(life)) {
					t.Fatalf("life %v f %v j %v: %v outside validity", life, f, j, got)
				}
				off := got.Sub(t0.Add(time.Duration(f * float64(life))))
				if math.Abs(float64(off)) > 0.1*float64(life)+1 {
					t.Fatalf("life %v f %v j %v: offset %v beyond 10%%", life, f, j, off)
				}
			}
		}
	}
}
